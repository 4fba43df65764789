import HearthCore
import HearthTestSupport
import Testing

/// The reference model: a flat map from each leaf's path to its value. Dumb on purpose.
struct LeafModel: Equatable {
    var leaves: [[String]: Node] = [:]

    init() {}

    init(_ node: Node) {
        LeafModel.flatten(node, prefix: [], into: &leaves)
    }

    static func flatten(_ node: Node, prefix: [String], into leaves: inout [[String]: Node]) {
        switch node.withoutPriority {
        case .null: return
        case .object(let children):
            children.forEach { flatten($0.value, prefix: prefix + [$0.key.string], into: &leaves) }
        default:
            leaves[prefix] = node.withoutPriority
        }
    }

    mutating func set(_ path: Path, _ value: Node) {
        let target = path.keys.map(\.string)
        // Everything at or below the target goes.
        leaves = leaves.filter { !$0.key.starts(with: target) }
        if !value.isNull {
            // A leaf above the target becomes an object holding the new value.
            leaves = leaves.filter { !(target.starts(with: $0.key) && $0.key.count < target.count) }
            LeafModel.flatten(value, prefix: target, into: &leaves)
        }
    }
}

@Suite("Tree (model-based)")
struct TreeModelTests {
    @Test("random sets, deletes and updates match the model", arguments: [11, 12, 13, 14, 15, 16] as [UInt64])
    func randomOperations(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var root = Node.null
        var model = LeafModel()
        var history: [(Node, LeafModel)] = []
        for step in 0..<1500 {
            let location = DataGenerator.path(maxDepth: 3, using: &random)
            let change: Change
            switch Int.random(in: 0..<4, using: &random) {
            case 0:
                change = Change(kind: .set, path: location, mutations: [.set(location, .null)])
            case 1:
                // A multi-path update with distinct, non-overlapping child paths.
                var keys = Set<ChildKey>()
                for _ in 0..<Int.random(in: 1...3, using: &random) { keys.insert(DataGenerator.key(using: &random)) }
                let mutations = keys.sorted().map { key -> Change.Mutation in
                    let value = Int.random(in: 0..<4, using: &random) == 0 ? Node.null : DataGenerator.node(depth: 2, using: &random)
                    return .set(location.appending(key), value)
                }
                change = Change(kind: .update, path: location, mutations: mutations)
            default:
                change = Change(kind: .set, path: location, mutations: [.set(location, DataGenerator.node(depth: 3, using: &random))])
            }
            root = change.applied(to: root)
            for mutation in change.mutations {
                if case .set(let path, let value) = mutation { model.set(path, value) }
            }
            #if DEBUG
            root.checkInvariants()
            #endif
            #expect(LeafModel(root) == model, "seed \(seed) step \(step)")
            if LeafModel(root) != model { return }
            if step % 100 == 0 { history.append((root, model)) }
        }
        // Every old root still reads exactly as it did (persistence).
        for (oldRoot, oldModel) in history { #expect(LeafModel(oldRoot) == oldModel) }
    }

    @Test func writingBelowALeafReplacesIt() {
        let root = Node.object(ChildMap().setting("a", .string("x")))
        let changed = root.setting(Path(keys: ["a", "b"]), to: .int(1))
        #expect(JSONWriter.string(changed) == #"{"a":{"b":1}}"#)
        #expect(JSONWriter.string(root.setting(Path(keys: ["a", "b"]), to: .null)) == #"{"a":"x"}"#)
    }

    @Test func deletingTheLastChildPrunesUpward() {
        let root = Node.null.setting(Path(keys: ["a", "b", "c"]), to: .int(1)).setting(Path(keys: ["z"]), to: .int(2))
        #expect(JSONWriter.string(root.setting(Path(keys: ["a", "b", "c"]), to: .null)) == #"{"z":2}"#)
        #expect(root.setting(Path(keys: ["a", "b", "c"]), to: .null).setting(Path(keys: ["z"]), to: .null) == .null)
    }

    @Test func priorities() {
        var root = Node.null.setting(Path(keys: ["a"]), to: .int(1))
        root = root.settingPriority(Path(keys: ["a"]), to: .number(5))
        #expect(root.child("a").priority == .number(5))
        root = root.setting(Path(keys: ["a", "b"]), to: .int(2))
        #expect(root.child("a").priority == .number(5), "an object keeps its priority when a child changes")
        root = root.settingPriority(Path(keys: ["missing"]), to: .number(1))
        #expect(root.child("missing") == .null)
        #if DEBUG
        root.checkInvariants()
        #endif
    }

    @Test func increments() {
        #expect(Node.int(1).incremented(by: .int(2)) == .int(3))
        #expect(Node.int(Int64.max).incremented(by: .int(1)) == .double(Double(Int64.max) + 1))
        #expect(Node.int(1).incremented(by: .double(0.5)) == .double(1.5))
        #expect(Node.double(1.5).incremented(by: .int(1)) == .double(2.5))
        #expect(Node.string("x").incremented(by: .int(3)) == .int(3))
        #expect(Node.null.incremented(by: .double(-2)) == .double(-2))
    }

    @Test func etags() {
        #expect(ETag.of(.null) == "null_etag")
        let a = ETag.of(.int(1))
        #expect(a.utf8.count == 28)
        #expect(a == ETag.of(.int(1)))
        #expect(a != ETag.of(.int(2)))
        #expect(ETag.of(.int(1)) != ETag.of(Node.int(1).with(priority: .number(1))))
        // SHA-1 test vector: "abc".
        let digest = Array("abc".utf8).withUnsafeBytes { SHA1.hash($0) }
        #expect(Base64.encode(digest) == "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=")
    }
}
