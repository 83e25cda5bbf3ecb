import Foundation
@testable import Config
import Testing

/// The YAML reader of fbk.conf and check.conf (libyaml): a mistake or a
/// hostile file gives a message, never a crash or a runaway.
@Suite struct YAMLTests {
    @Test func mappingsSequencesAndScalarsWithTheirLines() throws {
        let root = try #require(try YAML.compose("client: pi\nmirrors:\n  - a\n  - {url: b, region: c}\n"))
        guard case .mapping(let m) = root else { Issue.record("not a mapping"); return }
        #expect(m["client"]?.string == "pi")
        guard case .sequence(let seq) = m["mirrors"] else { Issue.record("no sequence"); return }
        #expect(seq.count == 2 && seq[0].string == "a" && seq[0].mark?.line == 3)
        guard case .mapping(let inner) = seq[1] else { Issue.record("not a mapping"); return }
        #expect(inner["region"]?.string == "c")
        #expect(try YAML.compose("") == nil)
    }

    @Test func aKeyGivenTwiceIsRefused() {
        #expect(throws: YAML.Invalid.self) { try YAML.compose("client: a\nstate: /x\nclient: b\n") }
        do { _ = try YAML.compose("client: a\nclient: b\n") } catch {
            #expect(error.description.contains("'client' is given twice") && error.description.hasPrefix("line 2"), "\(error)")
        }
    }

    @Test func aSecondDocumentIsRefused() {
        #expect(throws: YAML.Invalid.self) { try YAML.compose("client: a\n---\nclient: b\n") }
    }

    @Test func aliasesAreSharedNotCopied() throws {
        // 20,000 references to one 1 MiB value: copied, 20 GB; shared, one copy.
        let big = String(repeating: "x", count: 1 << 20)
        let text = "a: &big \(big)\nb: [" + Array(repeating: "*big", count: 20_000).joined(separator: ", ") + "]\n"
        let root = try #require(try YAML.compose(text))
        guard case .mapping(let m) = root, case .sequence(let seq) = m["b"] else { Issue.record("not parsed"); return }
        #expect(seq.count == 20_000)
        #expect(seq[19_999].string?.utf8.count == 1 << 20)
    }

    @Test func aliasBombsAndCyclesStop() {
        // Each level refers to the one before ten times: 10^9 references.
        var text = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 { text += "l\(i): &l\(i) [" + Array(repeating: "*l\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        do { _ = try YAML.compose(text); Issue.record("an alias bomb was accepted") } catch {
            #expect(error.description.contains("more than \(YAML.maxNodes) nodes"), "\(error)")
        }
        do { _ = try YAML.compose("a: &x [*x]\n"); Issue.record("a cycle was accepted") } catch {
            #expect(error.description.contains("levels deep"), "\(error)")
        }
    }

    @Test func bytesThatAreNotTextAreNamedByOffset() {
        do { _ = try YAML.compose("client: a\u{0}b\n"); Issue.record("a NUL was accepted") } catch {
            #expect(error.description.hasPrefix("byte "), "\(error)")
        }
    }
}
