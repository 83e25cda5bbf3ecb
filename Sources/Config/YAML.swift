// The YAML the configuration files are written in, read by Debian's
// libyaml into a small tree: scalars (always text: fields are parsed by
// the code that reads them, so no tag resolution happens), sequences and
// mappings, each with the line it starts on for error messages.
//
// The files are the operator's, but a typing mistake must still give a
// message and never a crash or a runaway: a mapping's keys are unique, a
// file has one document, and aliases cannot expand a small file into a
// huge tree (the node and depth budgets below).

internal import CYAML

enum Node {
    case scalar(Scalar)
    case mapping(Mapping)
    case sequence(Sequence)

    struct Mark { let line: Int }

    struct Scalar {
        let string: String
        let mark: Mark
    }

    struct Mapping: Swift.Sequence {
        let pairs: [(key: Node, value: Node)]
        let mark: Mark

        /// The value of the text key `key`.
        subscript(key: String) -> Node? { pairs.first { $0.key.string == key }?.value }

        func makeIterator() -> IndexingIterator<[(key: Node, value: Node)]> { pairs.makeIterator() }
    }

    struct Sequence: RandomAccessCollection {
        let nodes: [Node]
        let mark: Mark
        var startIndex: Int { nodes.startIndex }
        var endIndex: Int { nodes.endIndex }
        subscript(i: Int) -> Node { nodes[i] }
    }

    /// A scalar's text; nil for a mapping or a sequence.
    var string: String? {
        if case .scalar(let s) = self { return s.string }
        return nil
    }

    var mark: Mark? {
        switch self {
        case .scalar(let s): s.mark
        case .mapping(let m): m.mark
        case .sequence(let s): s.mark
        }
    }
}

enum YAML {
    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// The most nodes a document may expand to (aliases included) and how
    /// deep it may nest: far above any configuration, far below trouble.
    static let maxNodes = 100_000
    static let maxDepth = 64

    /// The document's root; nil for an empty document.
    static func compose(_ text: String) throws(Invalid) -> Node? {
        // On the heap: libyaml keeps a pointer to the parser inside the
        // parser (its input handler's data), used again by every load.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        parser.initialize(to: yaml_parser_t())
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { throw Invalid(description: "out of memory") }
        defer { yaml_parser_delete(parser) }
        let document = UnsafeMutablePointer<yaml_document_t>.allocate(capacity: 2)
        document.initialize(repeating: yaml_document_t(), count: 2)
        defer { document.deallocate() }
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { (buffer) throws(Invalid) -> Node? in
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            guard yaml_parser_load(parser, document) == 1 else { throw problem(parser.pointee) }
            defer { yaml_document_delete(document) }
            guard yaml_document_get_root_node(document) != nil else { return nil }
            var converter = Converter(document: document)
            let node = try converter.convert(index: 1, depth: 0)

            let next = document + 1
            guard yaml_parser_load(parser, next) == 1 else { throw problem(parser.pointee) }
            defer { yaml_document_delete(next) }
            if yaml_document_get_root_node(next) != nil {
                throw Invalid(description: "line \(Int(next.pointee.start_mark.line) + 1): a second document ('---'): the file holds one")
            }
            return node
        }
    }

    private static func problem(_ parser: yaml_parser_t) -> Invalid {
        let what = parser.problem.map { String(cString: $0) } ?? "syntax error"
        let context = parser.context.map { String(cString: $0) + ", " } ?? ""
        if parser.error == YAML_READER_ERROR {
            // Bytes that are not text (a NUL, invalid UTF-8): only an offset is known.
            return Invalid(description: "byte \(Int(parser.problem_offset)): \(what)")
        }
        return Invalid(description: "line \(Int(parser.problem_mark.line) + 1), column \(Int(parser.problem_mark.column) + 1): \(context)\(what)")
    }

    /// libyaml's node graph as a tree. An alias is the same libyaml node
    /// as its anchor, so each node is converted once and then shared (a
    /// thousand aliases of one long value cost one copy); the budget
    /// counts the tree as if expanded, the depth limit stops cycles.
    private struct Converter {
        let document: UnsafeMutablePointer<yaml_document_t>
        /// Each converted node, and how many nodes it stands for expanded.
        var converted: [Int32: (node: Node, size: Int)] = [:]
        var budget = YAML.maxNodes

        mutating func convert(index: Int32, depth: Int) throws(Invalid) -> Node {
            guard let node = yaml_document_get_node(document, index) else { throw Invalid(description: "a reference to a node that is not there") }
            let mark = Node.Mark(line: Int(node.pointee.start_mark.line) + 1)
            let tooMany = Invalid(description: "line \(mark.line): more than \(maxNodes) nodes (aliases expanding?)")
            if let done = converted[index] {
                budget -= done.size
                guard budget >= 0 else { throw tooMany }
                return done.node
            }
            budget -= 1
            guard budget >= 0 else { throw tooMany }
            guard depth <= maxDepth else { throw Invalid(description: "line \(mark.line): nested more than \(maxDepth) levels deep") }
            let before = budget
            let result = try convertNew(node, mark: mark, depth: depth)
            converted[index] = (result, 1 + before - budget)
            return result
        }

        private mutating func convertNew(_ node: UnsafeMutablePointer<yaml_node_t>, mark: Node.Mark, depth: Int) throws(Invalid) -> Node {
            switch node.pointee.type {
            case YAML_SCALAR_NODE:
                let s = node.pointee.data.scalar
                let text = String(decoding: UnsafeBufferPointer(start: s.value, count: s.length), as: UTF8.self)
                return .scalar(Node.Scalar(string: text, mark: mark))
            case YAML_SEQUENCE_NODE:
                var items: [Node] = []
                var item = node.pointee.data.sequence.items.start
                while let i = item, i < node.pointee.data.sequence.items.top {
                    items.append(try convert(index: i.pointee, depth: depth + 1))
                    item = i + 1
                }
                return .sequence(Node.Sequence(nodes: items, mark: mark))
            case YAML_MAPPING_NODE:
                var pairs: [(key: Node, value: Node)] = []
                var seen = Set<String>()
                var pair = node.pointee.data.mapping.pairs.start
                while let p = pair, p < node.pointee.data.mapping.pairs.top {
                    let key = try convert(index: p.pointee.key, depth: depth + 1)
                    if let name = key.string, !seen.insert(name).inserted {
                        throw Invalid(description: "line \(key.mark?.line ?? mark.line): '\(name)' is given twice in one mapping")
                    }
                    pairs.append((key, try convert(index: p.pointee.value, depth: depth + 1)))
                    pair = p + 1
                }
                return .mapping(Node.Mapping(pairs: pairs, mark: mark))
            default:
                throw Invalid(description: "line \(mark.line): an empty node")
            }
        }
    }
}
