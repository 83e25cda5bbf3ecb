// Writes a snapshot's pack listing (FORMAT.md 6, "FBKLST02") while the run
// goes on: each pack's chunks are written, compressed and encrypted as the
// pack is delivered, so the listing never exists whole in memory, however
// many chunks a run stores.
//
//   listing = "FBKLST02" || nonce (12) || AES-256-GCM(zstd frame of JSON) || tag (16)

import Seal
import Chunker
import Platform

package final class PackListingWriter {
    static let magic = Array("FBKLST02".utf8)
    /// JSON is gathered up to this size before it is compressed.
    private static let flushSize = 64 << 10

    private let snapshot: SnapshotID
    private let output: (UnsafeRawBufferPointer) throws -> Void
    private let sealer: SymmetricBox.Sealer
    private let compressor: StreamCompressor
    private let hash = SHA256()
    private var json: [UInt8] = []
    private var ciphertext: [UInt8] = []
    private var packCount = 0
    private var size = 0

    /// Starts a listing; `output` receives the object's bytes in order.
    /// - Throws: `SealError` if the cipher or compressor cannot start.
    package init(client: String, snapshot: SnapshotID, keys: ClientKeys,
         output: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        self.snapshot = snapshot
        self.output = output
        sealer = try SymmetricBox.Sealer(key: keys.listingKey, associatedData: Self.associatedData(snapshot: snapshot))
        compressor = try StreamCompressor()
        try emit(Self.magic + sealer.nonce)
        // Keys in sorted order, as every fbk document writes them.
        json.reserveCapacity(Self.flushSize + 4096)
        json += Array(#"{"client":"#.utf8)
        JSONText.appendString(client, to: &json)
        json += Array(#","format":2,"packs":["#.utf8)
    }

    /// The associated data of a listing's box: the magic and the object's path.
    static func associatedData(snapshot: SnapshotID) -> [UInt8] {
        magic + Array(ObjectName.listing(snapshot).path.utf8)
    }

    /// Adds one pack and its chunks: `{"chunks":[["hex ID",kind,length],…],"path":…}`.
    package func append(path: String, entries: [PackEntry]) throws {
        try append(path: path, chunks: entries.lazy.map { ($0.id, $0.kind, $0.plainLength) })
    }

    func append<S: Sequence<(id: ChunkID, kind: ChunkKind, length: Int)>>(path: String, chunks: S) throws {
        if packCount > 0 { json.append(UInt8(ascii: ",")) }
        packCount += 1
        json += Array(#"{"chunks":["#.utf8)
        for (i, chunk) in chunks.enumerated() {
            if i > 0 { json.append(UInt8(ascii: ",")) }
            json.append(UInt8(ascii: "["))
            JSONText.appendHexString(chunk.id.bytes, to: &json)
            json.append(UInt8(ascii: ","))
            json += Array(String(chunk.kind.rawValue).utf8)
            json.append(UInt8(ascii: ","))
            json += Array(String(chunk.length).utf8)
            json.append(UInt8(ascii: "]"))
            if json.count >= Self.flushSize { try flush() }
        }
        json += Array(#"],"path":"#.utf8)
        JSONText.appendString(path, to: &json)
        json.append(UInt8(ascii: "}"))
        if json.count >= Self.flushSize { try flush() }
    }

    /// Ends the listing with the snapshot's root tree.
    /// - Returns: the object's size and SHA-256.
    package func finish(root: String) throws -> (size: Int, sha256: Digest) {
        json += Array(#"],"root":"#.utf8)
        JSONText.appendString(root, to: &json)
        json += Array(#","snapshot":"#.utf8)
        JSONText.appendString(snapshot.text, to: &json)
        json.append(UInt8(ascii: "}"))
        try flush()
        try compressor.finish { try encrypt($0) }
        try emit(sealer.finish())
        return (size, hash.finalize())
    }

    private func flush() throws {
        try json.withUnsafeBytes { text in try compressor.compress(text) { try encrypt($0) } }
        json.removeAll(keepingCapacity: true)
    }

    private func encrypt(_ compressed: UnsafeRawBufferPointer) throws {
        if ciphertext.count < compressed.count { ciphertext = [UInt8](repeating: 0, count: compressed.count) }
        try ciphertext.withUnsafeMutableBytes { out in
            let piece = UnsafeMutableRawBufferPointer(rebasing: out[..<compressed.count])
            try sealer.encrypt(compressed, into: piece)
            try emit(UnsafeRawBufferPointer(piece))
        }
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try emit($0) }
    }

    private func emit(_ bytes: UnsafeRawBufferPointer) throws {
        hash.update(bytes)
        size += bytes.count
        try output(bytes)
    }
}
