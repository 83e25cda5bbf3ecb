import Foundation
import Seal
import Testing

@Suite struct SymmetricBoxTests {
    let key = [UInt8](repeating: 7, count: 32)
    let aad = Array("FBKLST01snapshots/x.listing".utf8)

    @Test func sealingInPlaceGivesTheLayoutOfSealAndOpens() throws {
        for length in [0, 1, 15, 16, 17, 100_000] {
            let plaintext = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let prefix = Array("MAGIC123".utf8)
            var buffer = prefix + [UInt8](repeating: 0, count: SymmetricBox.nonceLength) + plaintext
            try SymmetricBox.seal(inPlace: &buffer, nonceAt: prefix.count, key: key, associatedData: aad)
            #expect(buffer.count == prefix.count + 12 + length + 16)
            #expect(Array(buffer.prefix(prefix.count)) == prefix)
            let box = Array(buffer.dropFirst(prefix.count))
            #expect(try SymmetricBox.open(box, key: key, associatedData: aad) == plaintext)
            if length > 0 { #expect(Array(box[12..<(12 + length)]) != plaintext) }
            // Any changed byte, or other associated data, fails authentication.
            var tampered = box
            tampered[tampered.count / 2] ^= 1
            #expect(throws: SealError.self) { try SymmetricBox.open(tampered, key: key, associatedData: aad) }
            #expect(throws: SealError.self) { try SymmetricBox.open(box, key: key, associatedData: aad + [0]) }
        }
    }

    @Test func eachSealUsesAFreshNonce() throws {
        var a = [UInt8](repeating: 0, count: 12) + Array("same".utf8)
        var b = a
        try SymmetricBox.seal(inPlace: &a, nonceAt: 0, key: key, associatedData: aad)
        try SymmetricBox.seal(inPlace: &b, nonceAt: 0, key: key, associatedData: aad)
        #expect(a.prefix(12) != b.prefix(12))
        #expect(try SymmetricBox.open(a, key: key, associatedData: aad) == SymmetricBox.open(b, key: key, associatedData: aad))
    }
}
