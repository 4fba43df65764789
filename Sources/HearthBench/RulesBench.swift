import HearthCore
import HearthTestSupport

/// A typical rules document: 25 rules, three `$wildcards`, `newData.child(...)` and regex
/// validations, as a factory deployment with users and an admin list would have.
let typicalRules = #"""
{
  "rules": {
    ".read": "auth != null",
    "blessing": {
      ".write": "auth == null || auth.token.admin === true",
      ".indexOn": ["device_id", "timestamp"],
      "$id": {
        ".validate": "newData.hasChildren(['device_id', 'mac', 'type', 'success', 'timestamp'])",
        "device_id": { ".validate": "newData.isString() && newData.val().matches(/^[0-9a-f]{16}$/)" },
        "mac": { ".validate": "newData.isString() && newData.val().length == 12" },
        "type": { ".validate": "newData.val() == 'blessing' || newData.val() == 'blinkup'" },
        "success": { ".validate": "newData.isBoolean()" },
        "timestamp": { ".validate": "newData.isNumber() && newData.val() <= now + 60000" },
        "network": { ".validate": "newData.hasChildren(['ssid'])" },
        "$other": { ".validate": "newData.parent().child('type').val() == 'blinkup'" }
      }
    },
    "testresult": {
      ".write": "auth == null",
      "$id": {
        ".validate": "newData.child('device_id').isString() && newData.child('success').isBoolean()",
        "msg": { ".validate": "newData.isString() && newData.val().length < 1000" }
      }
    },
    "users": {
      "$uid": {
        ".read": "auth != null && auth.uid == $uid",
        ".write": "auth != null && auth.uid == $uid",
        "name": { ".validate": "newData.isString() && newData.val().length > 0 && newData.val().length < 100" },
        "email": { ".validate": "newData.isString() && newData.val().contains('@')" }
      }
    },
    "config": {
      ".write": "auth != null && root.child('admins').hasChild(auth.uid)"
    }
  }
}
"""#

/// Times the rules checks of one webhook write (a `POST /blessing.json`) and one read, next
/// to the in-memory write itself, and prints one JSON line.
func rulesBenchmark(seconds: Double) async throws {
    let rules = try RuleSet.parse(typicalRules)
    // A namespace that already holds 10,000 blessings.
    var existing = ChildMap()
    var random = SeededRandom(seed: 7)
    var pushIDs = PushIDGenerator()
    let document = try JSONParser.parse(Array(#"""
        {"device_id":"c0010ded58f1a2b3","mac":"0c2a690a1b2c","type":"blessing","success":true,"timestamp":1795946155973}
        """#.utf8)).node
    for index in 0..<10_000 {
        existing.set(ChildKey(pushIDs.next(now: 1_795_946_000_000 + Int64(index), using: &random)), document)
    }
    let oldRoot = Node.object(ChildMap(sortedEntries: [ChildEntry(key: "blessing", value: .object(existing))]))
    let name = ChildKey(pushIDs.next(now: 1_795_946_100_000, using: &random))
    let path = Path(keys: ["blessing", name])
    let newRoot = oldRoot.setting(path, to: document)
    let now: Int64 = 1_795_946_200_000

    let iterations = 10_000
    precondition(rules.canWrite([path], auth: .null, oldRoot: oldRoot, newRoot: newRoot, now: now).allowed)
    let write = measure(seconds: seconds) {
        for _ in 0..<iterations {
            blackHole(rules.canWrite([path], auth: .null, oldRoot: oldRoot, newRoot: newRoot, now: now))
        }
    } / Double(iterations)
    let user = try JSONParser.parse(Array(#"{"uid":"alice","provider":"custom","token":{"uid":"alice"}}"#.utf8)).node
    precondition(rules.canRead(path, auth: user, root: newRoot, now: now).allowed)
    let read = measure(seconds: seconds) {
        for _ in 0..<iterations { blackHole(rules.canRead(path, auth: user, root: newRoot, now: now)) }
    } / Double(iterations)

    // The write itself in an in-memory namespace, with and without the rules, for scale.
    func timeWrites(access: WriteAccess?) async throws -> Double {
        let database = Database(name: "bench", root: oldRoot)
        let parsed = ParsedNode(node: document)
        let clock = ContinuousClock()
        var best = Double.infinity
        for _ in 0..<5 {
            let start = clock.now
            for _ in 0..<2_000 {
                _ = try await database.write(WriteRequest(path: Path(keys: ["blessing"]), operation: .push(parsed), access: access))
            }
            let elapsed = clock.now - start
            best = min(best, (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) / 2_000)
        }
        return best
    }
    let plainWrite = try await timeWrites(access: nil)
    let ruledWrite = try await timeWrites(access: WriteAccess(rules: rules, auth: .null, now: now))
    emit([
        "rules": 25,
        "write_check_us": write * 1e6,
        "read_check_us": read * 1e6,
        "memory_write_us": plainWrite * 1e6,
        "memory_write_with_rules_us": ruledWrite * 1e6,
    ])
}
