// The libFuzzer binary, built only by scripts/fuzz (the target exists in the package only when
// SLUICE_FUZZ is set, and is linked with -sanitize=fuzzer). `SluiceFuzz TARGET [libFuzzer options]
// [corpus dirs]` fuzzes one target of `FuzzTargets` (or SLUICE_FUZZ_TARGET=TARGET SluiceFuzz [options]); `SluiceFuzz --seeds TARGET DIR` writes its
// seed inputs. libFuzzer's own `main` is not used: this one picks the target, then runs the
// driver (`LLVMFuzzerRunDriver`) with the rest of the arguments.

import Foundation
import SluiceFuzzEntries

typealias TestOneInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: TestOneInput) -> CInt

/// Set once before the driver starts; the C callback cannot capture it.
nonisolated(unsafe) var selected: FuzzTargets.Entry?

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

let arguments = CommandLine.arguments
let names = FuzzTargets.all.map(\.name).joined(separator: ", ")
guard arguments.count >= 2 else { fail("usage: SluiceFuzz TARGET [libFuzzer options] [corpus dirs]; targets: \(names)") }

if arguments[1] == "--seeds" {
    guard arguments.count == 4 else { fail("usage: SluiceFuzz --seeds TARGET DIR") }
    let directory = URL(fileURLWithPath: arguments[3])
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    for (i, seed) in FuzzTargets.seeds(for: arguments[2]).enumerated() {
        try Data(seed).write(to: directory.appendingPathComponent("seed-\(i)"))
    }
    exit(0)
}

// The target comes from the first argument, which the driver does not see; it is passed on in
// SLUICE_FUZZ_TARGET, because libFuzzer runs itself again (to merge, to fork) with the driver's
// arguments only.
var driverArguments: [UnsafeMutablePointer<CChar>?]
if let inherited = ProcessInfo.processInfo.environment["SLUICE_FUZZ_TARGET"] {
    guard let entry = FuzzTargets.entry(named: inherited) else { fail("unknown target '\(inherited)'; targets: \(names)") }
    selected = entry
    driverArguments = arguments.map { strdup($0) }
} else {
    guard let entry = FuzzTargets.entry(named: arguments[1]) else { fail("unknown target '\(arguments[1])'; targets: \(names)") }
    selected = entry
    setenv("SLUICE_FUZZ_TARGET", arguments[1], 1)
    driverArguments = ([arguments[0]] + arguments.dropFirst(2)).map { strdup($0) }
}
driverArguments.append(nil)
var argc = CInt(driverArguments.count - 1)
let status = driverArguments.withUnsafeMutableBufferPointer { buffer -> CInt in
    guard let base = buffer.baseAddress else { return 2 }
    var argv = base
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        let bytes = size > 0 ? data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [] : []
        selected?(bytes)
        return 0
    }
}
exit(status)
