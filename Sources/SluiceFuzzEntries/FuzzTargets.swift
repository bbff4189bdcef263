// The fuzz targets' entry functions: one input (bytes) through one decoder or parser, the same
// function for the libFuzzer binary (`SluiceFuzz`, built by scripts/fuzz) and for the tests that
// replay fuzz/regressions and fuzz/corpus in CI. An input may be refused in any way the code
// refuses input (a thrown error, a dead letter); it must never trap. Where two paths must agree
// or a product of the code must be read back by it, a violated check traps too, so that the
// fuzzer reports it as a crash.

import Foundation
import SluiceConnectors
import SluiceCoordinator
import SluiceCore
import SluiceJob
import SluiceProtocol

public enum FuzzTargets {
    public typealias Entry = @Sendable ([UInt8]) -> Void

    /// Every target by name, as scripts/fuzz and the tests call them.
    public static let all: [(name: String, entry: Entry)] = [
        ("csv", csv),
        ("json", json),
        ("expression", expression),
        ("jobspec", jobspec),
        ("snapshot", snapshot),
        ("pgoutput", pgoutput),
        ("protocol", workerMessages),
    ]

    public static func entry(named name: String) -> Entry? {
        all.first { $0.name == name }?.entry
    }

    /// What CI replays for a target: its seeds, then every file of `fuzz/regressions/TARGET` and
    /// `fuzz/corpus/TARGET` under `repository`. Returns how many inputs were fed.
    public static func replayAll(_ name: String, repository: URL) throws -> Int {
        guard let entry = entry(named: name) else { throw FuzzReplayError(message: "no fuzz target '\(name)'") }
        let seeds = seeds(for: name)
        seeds.forEach(entry)
        let fuzz = repository.appendingPathComponent("fuzz")
        return try seeds.count + replay(name, directory: fuzz.appendingPathComponent("regressions/\(name)"))
            + replay(name, directory: fuzz.appendingPathComponent("corpus/\(name)"))
    }

    /// Feeds every file under `directory` (recursively, hidden files skipped) to the target;
    /// returns how many were fed.
    @discardableResult
    public static func replay(_ name: String, directory: URL) throws -> Int {
        guard let entry = entry(named: name) else { throw FuzzReplayError(message: "no fuzz target '\(name)'") }
        let files = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey],
                                                   options: [.skipsHiddenFiles])
        var fed = 0
        while let url = files?.nextObject() as? URL {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            entry(Array(try Data(contentsOf: url)))
            fed += 1
        }
        return fed
    }
}

public struct FuzzReplayError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A small cursor over the fuzz input: control bytes first, then the body. Reads past the end
/// give zeros, so every input is usable.
struct FuzzInput {
    let bytes: [UInt8]
    var at = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { at >= bytes.count }

    mutating func byte() -> UInt8 {
        guard at < bytes.count else { return 0 }
        defer { at += 1 }
        return bytes[at]
    }

    mutating func uint16() -> Int { Int(byte()) | Int(byte()) << 8 }

    /// A chunk of at most `count` bytes.
    mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, at + max(0, count))
        defer { at = max(at, end) }
        return at < end ? Array(bytes[at..<end]) : []
    }

    mutating func rest() -> [UInt8] { take(bytes.count - at) }

    /// Length-prefixed (2 bytes, little endian) chunks until the end.
    mutating func chunks() -> [[UInt8]] {
        var out: [[UInt8]] = []
        while !isAtEnd { out.append(take(uint16())) }
        return out
    }
}
