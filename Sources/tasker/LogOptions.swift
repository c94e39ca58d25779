import ArgumentParser
import Foundation
import Logging

/// How `tasker serve` and `tasker dev` log: the level, and lines of text or of JSON.
struct LogOptions: ParsableArguments {
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (env TASKER_LOG_LEVEL).")
    var level: LevelArgument = TaskerEnvironment.value("TASKER_LOG_LEVEL", LevelArgument.init(argument:)) ?? LevelArgument(.info)

    @Option(name: .customLong("log-format"), help: "text, or json: one object a line, its metadata as fields (env TASKER_LOG_FORMAT).")
    var format: Format = TaskerEnvironment.value("TASKER_LOG_FORMAT", Format.init(rawValue:)) ?? .text

    func validate() throws {
        try TaskerEnvironment.check("TASKER_LOG_LEVEL", expected: "one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))", LevelArgument.init(argument:))
        try TaskerEnvironment.check("TASKER_LOG_FORMAT", expected: "text or json", Format.init(rawValue:))
    }

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    struct LevelArgument: ExpressibleByArgument {
        let level: Logger.Level

        init(_ level: Logger.Level) {
            self.level = level
        }

        init?(argument: String) {
            guard let level = Logger.Level(rawValue: argument) else { return nil }
            self.level = level
        }

        var defaultValueDescription: String { level.rawValue }
        static var allValueStrings: [String] { Logger.Level.allCases.map(\.rawValue) }
    }

    /// The arguments that give a child `tasker serve` the same.
    var arguments: [String] { ["--log-level", level.level.rawValue, "--log-format", format.rawValue] }

    /// Makes every logger of the process log this way, to standard error; once per process.
    func bootstrap() {
        let level = self.level.level
        switch format {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, logLevel: level) }
        }
    }
}

/// One JSON object a line on standard error: time, level, label, message, then the metadata
/// as fields of their own.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, logLevel: Logger.Level) {
        self.label = label
        self.logLevel = logLevel
        metadataProvider = LoggingSystem.metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private static let output = NSLock()

    func log(event: LogEvent) {
        var fields: [String: Any] = [:]
        let merged = metadata.merging(metadataProvider?.get() ?? [:]) { $1 }.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged { fields[key] = Self.json(value) }
        if let error = event.error { fields["error"] = "\(error)" }
        fields["time"] = ISO8601DateFormatter.withFractions.string(from: Date())
        fields["level"] = event.level.rawValue
        fields["label"] = label
        fields["message"] = event.message.description
        fields["source"] = event.source
        guard var data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        Self.output.withLock { FileHandle.standardError.write(data) }
    }

    private static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(json)
        case .dictionary(let entries): entries.mapValues(json)
        }
    }
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) static let withFractions: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}
