import Testing
@testable import Chunker

/// Cut points are part of fbk's repository format: a change here means
/// existing repositories deduplicate worse against new backups. These
/// vectors pin the table derivation, the hash and the cut rule (FORMAT.md,
/// "Chunking"). Update them only together with a format version bump.
@Suite struct BuzhashGoldenTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let parameters: ChunkerParameters
        let inputSeed: UInt64
        let inputLength: Int
        let cuts: [Int]
        var testDescription: String { name }
    }

    static let vectors: [Vector] = [
        Vector(name: "default 16 MiB", parameters: .default, inputSeed: 0x600D, inputLength: 16 << 20,
               cuts: [
                   347089, 1138260, 1629439, 2771359, 3992171, 4271941, 4558138, 4877601, 5243436, 6070009,
                   6407112, 6673254, 8468516, 10190428, 10660513, 12360218, 13192482, 13775637, 14677571, 15182009,
                   15696248, 16452145, 16777216
               ]),
        Vector(name: "small 1 MiB", parameters: smallParameters, inputSeed: 0x5EED, inputLength: 1 << 20,
               cuts: [
                   10477, 19269, 25747, 40057, 43924, 56277, 59180, 69061, 74060, 78598, 83648, 85798, 91739,
                   108576, 124286, 130427, 144856, 166644, 180097, 184840, 186890, 190652, 206706, 209882, 218783,
                   223879, 233145, 243661, 250636, 259201, 263334, 266492, 281979, 285154, 299131, 308913, 312798,
                   326322, 335032, 344614, 377382, 384989, 399817, 417909, 420829, 434915, 439552, 442026, 450890,
                   463684, 468133, 477644, 489803, 494301, 496454, 498549, 504598, 513980, 525312, 545499, 551149,
                   556418, 560818, 563299, 567162, 570322, 574224, 579203, 586285, 590276, 606626, 611129, 613379,
                   618644, 634629, 640712, 643172, 652842, 664018, 666312, 673903, 677185, 683324, 689853, 694048,
                   707284, 713053, 717229, 727924, 730139, 738822, 771590, 775115, 783281, 785807, 793774, 822725,
                   828361, 842922, 845290, 850074, 875678, 880941, 889184, 899987, 908420, 910974, 920411, 922900,
                   942404, 945356, 956816, 966706, 975661, 981853, 991357, 1008394, 1013147, 1015444, 1023186,
                   1035268, 1040113, 1048576
               ]),
        Vector(name: "borg 16 MiB", parameters: .borg, inputSeed: 0xB0B6, inputLength: 16 << 20,
               cuts: [
                   7440160, 8394258, 11360026, 16250018, 16777216
               ]),
        Vector(name: "odd window 64 KiB",
               parameters: ChunkerParameters(minimumSize: 100, averageSize: 700, maximumSize: 3000, windowSize: 31),
               inputSeed: 0x0DD, inputLength: 64 << 10, cuts: [
                   770, 1121, 1804, 1991, 2240, 2837, 3328, 3531, 3952, 4942, 5693, 5970, 7091, 7793, 8342, 8808,
                   9927, 10102, 10503, 11287, 12155, 12642, 13222, 14038, 15739, 15849, 16851, 17154, 17400, 17895,
                   19498, 20352, 20507, 20659, 21157, 21294, 21888, 22016, 23025, 23326, 24160, 24410, 25625,
                   27621, 30621, 31130, 31352, 33143, 33508, 33785, 34010, 34586, 35334, 35613, 35736, 36083,
                   36810, 37358, 37794, 38825, 39068, 39499, 39994, 41207, 41581, 42237, 43432, 44018, 44612,
                   45272, 45729, 45902, 46109, 46882, 47164, 47421, 47783, 48175, 48288, 50778, 51701, 54023,
                   54320, 55869, 56773, 57200, 59795, 61760, 62235, 62632, 63015, 64769, 64909, 65182, 65536
               ]),
    ]

    @Test(arguments: vectors)
    func cutPointsMatchCommittedList(_ v: Vector) {
        var g = TestData(seed: v.inputSeed)
        let data = g.bytes(v.inputLength)
        let cuts = cutOffsets(lengths(data, v.parameters, seed: countingSeed))
        #expect(cuts == v.cuts, "actual cuts for \(v.name): \(cuts)")
    }

    @Test func tableDerivationMatchesFormat() throws {
        // Values computed independently with Python's hashlib from FORMAT.md:
        // T[c] = LE64(SHA-256(seed || "fbk buzhash table v1" || byte(c))[0..<8]).
        let zero = try BuzhashTable(seed: zeroSeed)
        #expect(zero.words[0] == 0x49ed_15c0_9b0f_9b8a)
        #expect(zero.words[1] == 0xa4d3_e8db_3a5d_3d91)
        #expect(zero.words[255] == 0x1137_eeb4_ed1d_f1de)
        #expect(try BuzhashTable(seed: countingSeed).words[7] == 0xa4f5_84d2_460d_32ef)
    }

    @Test func rollingUpdateEqualsRecompute() {
        // H(n+1) = rotl(H(n), 1) ^ rotl(T[out], w) ^ T[in]
        let table = try! BuzhashTable(seed: countingSeed)
        var g = TestData(seed: 1)
        let data = g.bytes(4096)
        for w in [1, 31, 63, 64, 65, 200] {
            var h = table.hash(window: data[0..<w])
            for n in w..<data.count {
                h = rotl(h, 1) ^ rotl(table.words[Int(data[n - w])], UInt64(w % 64)) ^ table.words[Int(data[n])]
                #expect(h == table.hash(window: data[(n - w + 1)...n]))
                if h != table.hash(window: data[(n - w + 1)...n]) { return }
            }
        }
    }

    @Test func sha256KnownAnswers() {
        func hex(_ b: [UInt8]) -> String { b.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
        #expect(hex(sha256([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(sha256([UInt8](repeating: 0x61, count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
