import ArgumentParser
import TaskerEngine

/// The TASKER_* variables that stand in for flags. Each is read as its flag would be; one that
/// is set to something that does not parse is a usage error naming the variable, never quietly
/// replaced by the default.
enum TaskerEnvironment {
    /// The variable's value parsed; nil when it is unset or does not parse (a default then, and
    /// `check` reports the latter).
    static func value<Value>(_ name: String, _ parse: (String) -> Value?) -> Value? {
        ProcessInfoLite.environment(name).flatMap(parse)
    }

    /// An on/off variable: on, true, yes or 1; off, false, no, 0 or unset.
    static func flag(_ name: String) -> Bool {
        value(name, onOff) ?? false
    }

    /// Throws the usage error for a variable set to what `parse` refuses; `expected` says what it takes.
    static func check<Value>(_ name: String, expected: String, _ parse: (String) -> Value?) throws {
        guard let text = ProcessInfoLite.environment(name), parse(text) == nil else { return }
        throw ValidationError("\(name) is \(InputCheck.quoted(text)), which is not \(expected): set it right or unset it")
    }

    static func checkFlag(_ name: String) throws {
        try check(name, expected: "on or off", onOff)
    }

    static func onOff(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "on", "true", "yes", "1": true
        case "off", "false", "no", "0", "": false
        default: nil
        }
    }

    /// TASKER_PORT and TASKER_HTTP_PORT, as `tasker serve` and `tasker dev` take them.
    static func checkListenPorts() throws {
        try check("TASKER_PORT", expected: "a port, 1 to 65535", port())
        try check("TASKER_HTTP_PORT", expected: "a port, 1 to 65535, or 0 for none", port(zeroTurnsOff: true))
    }

    /// A TCP port, 1 to 65535; with `zeroTurnsOff`, 0 too.
    static func port(zeroTurnsOff: Bool = false) -> (String) -> Int? {
        { text in Int(text).flatMap { (zeroTurnsOff ? 0 : 1)...65535 ~= $0 ? $0 : nil } }
    }
}
