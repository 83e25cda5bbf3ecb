import Foundation
import Seal
import Testing

@Suite struct SymmetricBoxTests {
    let key = [UInt8](repeating: 7, count: 32)
    let aad = Array("FBKLST02snapshots/x.listing".utf8)

    /// Seals `plaintext` through a `Sealer`, fed in pieces of `piece` bytes.
    func streamed(_ plaintext: [UInt8], piece: Int) throws -> [UInt8] {
        let sealer = try SymmetricBox.Sealer(key: key, associatedData: aad)
        var box = sealer.nonce
        var offset = 0
        while offset < plaintext.count {
            let n = min(piece, plaintext.count - offset)
            var out = [UInt8](repeating: 0, count: n)
            try plaintext[offset..<(offset + n)].withUnsafeBytes { input in
                try out.withUnsafeMutableBytes { o in
                    try Result { () throws(SealError) in try sealer.encrypt(input, into: o) }.get()
                }
            }
            box += out
            offset += n
        }
        return box + (try sealer.finish())
    }

    @Test func streamedSealingGivesTheLayoutOfSealAndOpens() throws {
        for length in [0, 1, 15, 16, 17, 100_000] {
            let plaintext = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            for piece in [1, 7, 4096, 1 << 20] where piece <= max(1, length) || piece == 1 {
                let box = try streamed(plaintext, piece: piece)
                #expect(box.count == 12 + length + 16)
                #expect(try SymmetricBox.open(box, key: key, associatedData: aad) == plaintext)
                if length > 0 { #expect(Array(box[12..<(12 + length)]) != plaintext) }
                // Any changed byte, or other associated data, fails authentication.
                var tampered = box
                tampered[tampered.count / 2] ^= 1
                #expect(throws: SealError.self) { try SymmetricBox.open(tampered, key: key, associatedData: aad) }
                #expect(throws: SealError.self) { try SymmetricBox.open(box, key: key, associatedData: aad + [0]) }
            }
            // The one-shot form is the same layout.
            let sealed = try SymmetricBox.seal(plaintext, key: key, associatedData: aad)
            #expect(try SymmetricBox.open(sealed, key: key, associatedData: aad) == plaintext)
        }
    }

    @Test func eachSealUsesAFreshNonce() throws {
        let a = try streamed(Array("same".utf8), piece: 4)
        let b = try streamed(Array("same".utf8), piece: 4)
        #expect(a.prefix(12) != b.prefix(12))
        #expect(try SymmetricBox.open(a, key: key, associatedData: aad) == SymmetricBox.open(b, key: key, associatedData: aad))
        #expect(throws: SealError.self) { try SymmetricBox.Sealer(key: [1, 2, 3], associatedData: aad) }
    }
}
