import SluiceJob
import Testing

/// The one YAML path walker (the job spec's and the chaos suites'): every refusal names the path of
/// the field, and is the caller's own error type.
@Suite struct YAMLReaderTests {
    struct Refusal: Error, Equatable {
        var path: String
        var message: String
    }

    let reader = YAMLReader { Refusal(path: $0, message: $1) }

    func refusal(_ body: () throws -> Void) -> Refusal? {
        do {
            try body()
            return nil
        } catch let error as Refusal {
            return error
        } catch {
            Issue.record("not the caller's error type: \(error)")
            return nil
        }
    }

    @Test func unknownFieldsAreNamedByTheirFullPath() throws {
        let root = try reader.root(of: "topology: {workers: 3, wrokers: 4}\n", empty: "empty")
        let top = try reader.mapping(root, path: "", allowed: ["topology"])
        let topology = try #require(top["topology"])
        #expect(refusal { _ = try reader.mapping(topology, path: "topology", allowed: ["workers"]) }
                == Refusal(path: "topology.wrokers", message: "unknown field; expected one of workers"))
        #expect(refusal { _ = try reader.mapping(root, path: "", allowed: ["name", "faults"]) }
                == Refusal(path: "topology", message: "unknown field; expected one of name, faults"))
        let fields = try reader.mapping(topology, path: "topology", allowed: ["workers", "wrokers"])
        let workers = try #require(fields["workers"])
        #expect(refusal { _ = try reader.mapping(workers, path: "topology.workers", allowed: ["a"]) }
                == Refusal(path: "topology.workers", message: "expected a mapping of a"))
    }

    @Test func scalarsAreCheckedWithThePathInTheError() throws {
        let root = try reader.root(of: "n: 1_000\nbig: 11\ntext: ''\nx: 0.5\nword: abc\n", empty: "empty")
        let map = try reader.mapping(root, path: "", allowed: ["n", "big", "text", "x", "word"])
        #expect(try reader.integer(try #require(map["n"]), path: "n") == 1_000)
        #expect(refusal { _ = try reader.integer(try #require(map["big"]), path: "a.big", in: 1...10) }
                == Refusal(path: "a.big", message: "must be between 1 and 10, got 11"))
        #expect(refusal { _ = try reader.integer(try #require(map["word"]), path: "word") }
                == Refusal(path: "word", message: "expected an integer, got 'abc'"))
        #expect(refusal { _ = try reader.string(try #require(map["text"]), path: "text") }
                == Refusal(path: "text", message: "expected a non-empty text value"))
        #expect(refusal { _ = try reader.number(try #require(map["x"]), path: "bounds.run_s", in: 1...86_400) }
                == Refusal(path: "bounds.run_s", message: "must be between 1 and 86400, got 0.5"))
        #expect(try reader.number(try #require(map["x"]), path: "x", in: 0...1) == 0.5)
    }

    @Test func aDocumentThatIsNotYAMLOrIsEmptyIsRefusedAtTheRoot() {
        let broken = refusal { _ = try reader.root(of: "a: [1, 2\n", empty: "the thing is empty") }
        #expect(broken?.path == "")
        #expect(broken?.message.hasPrefix("not valid YAML: ") == true)
        #expect(refusal { _ = try reader.root(of: "", empty: "the thing is empty") } == Refusal(path: "", message: "the thing is empty"))
    }

    /// The job spec goes through the reader and still throws its own error with its own words.
    @Test func theJobSpecKeepsItsErrors() {
        #expect(throws: JobSpecError(path: "window.bogus", message: "unknown field; expected one of kind, size_ms, slide_ms, gap_ms")) {
            try JobSpec.parse(yaml: "window: {kind: tumbling, size_ms: 500, bogus: 1}\naggregates: [count]\n")
        }
        #expect(throws: JobSpecError(path: "", message: "the job spec is empty")) { try JobSpec.parse(yaml: "") }
        #expect(throws: JobSpecError(path: "checkpoint.interval_ms", message: "expected an integer, got 'soon'")) {
            try JobSpec.parse(yaml: "window: {kind: tumbling, size_ms: 500}\naggregates: [count]\ncheckpoint: {interval_ms: soon}\n")
        }
    }
}
