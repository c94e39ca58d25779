import ArgumentParser
import Foundation
import TaskerClient
import TaskerProto
import TaskerRPC

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow a task live until it finishes.",
        discussion: """
            On a terminal: one line per step (status, attempts, last error) under a progress bar, \
            drawn as the task stands and redrawn as its steps move. Otherwise (or with --json): one \
            line per update, the task's history from its first. Ends with \
            the task and its results; exit code 0 when it is COMPLETE, 1 when it ended in ERROR \
            or was cancelled.
            """)

    @OptionGroup var client: ClientOptions

    @OptionGroup var taskID: TaskIDArgument

    func run() async throws {
        try await reporting { try await TaskWatcher(options: client).follow(taskID.value) }
    }
}

/// Follows one task's updates to its end, drawing them as they come.
struct TaskWatcher {
    let options: ClientOptions

    func follow(_ id: String) async throws {
        let final = try await options.withClient { tasker -> Tasker_V1_Task in
            let read = try await tasker.task(id)
            var view = TaskView(read)
            let live = !options.json && isatty(STDOUT_FILENO) != 0
            var drawn = 0
            if live { drawn = view.redraw(over: 0) }
            // On a terminal the read is drawn and only what follows it is applied: replaying the
            // history over it would step backwards. Lines and JSON tell the whole history.
            var last: UInt64 = live ? read.lastSequence : 0
            // Calls in a row that ended with no update: a node restarting has about 20 s.
            var failures = 0
            while true {
                do {
                    for try await update in tasker.updates(of: id, after: last) {
                        last = update.sequence
                        failures = 0
                        view.apply(update)
                        if options.json {
                            options.print(update)
                        } else if live {
                            drawn = view.redraw(over: drawn)
                        } else {
                            print(view.line(for: update))
                        }
                    }
                    break
                } catch let error as RPCError where [.resourceExhausted, .unavailable].contains(error.code) && failures < 12 {
                    // Cut off for falling behind, or the node went away: carry on from the last
                    // update seen, on whichever node answers.
                    failures += 1
                    try await Task.sleep(for: .milliseconds(min(200 << (failures - 1), 2000)))
                }
            }
            return try await tasker.task(id)
        }
        options.show(final)
        guard final.status == .complete || final.status == .resolvedManually else {
            throw CommandFailure("task \(final.taskID) ended \(final.status.contractName)", code: CommandFailure.taskFailed)
        }
    }
}

/// A task's steps as the updates leave them.
struct TaskView {
    private var task: Tasker_V1_Task
    private var errors: [String: String] = [:]

    init(_ task: Tasker_V1_Task) {
        self.task = task
        for step in task.steps where step.hasLastError { errors[step.name] = step.lastError.message }
    }

    mutating func apply(_ update: Tasker_V1_StepUpdate) {
        task.status = update.taskStatus
        guard let index = task.steps.firstIndex(where: { $0.name == update.stepName }), !update.stepName.isEmpty else { return }
        task.steps[index].status = update.status
        task.steps[index].attempts = max(task.steps[index].attempts, update.attempt)
        if update.hasError, !update.error.message.isEmpty { errors[update.stepName] = update.error.message }
        if update.status == .complete { errors[update.stepName] = nil }
    }

    /// One update as a line of text.
    func line(for update: Tasker_V1_StepUpdate) -> String {
        let sequence = String(format: "%4d  ", update.sequence)
        guard !update.stepName.isEmpty else { return sequence + "task \(update.taskStatus.contractName)" }
        var line = sequence + CommandOutput.pad(update.stepName, 22) + " " + CommandOutput.pad(update.status.contractName, 18)
        if update.attempt > 0 { line += " attempt \(update.attempt)" }
        if update.hasError, !update.error.message.isEmpty { line += "  \(update.error.message)" }
        while line.hasSuffix(" ") { line.removeLast() }
        return line
    }

    /// Draws the view over the `previous` lines drawn before; returns how many it drew.
    func redraw(over previous: Int) -> Int {
        var lines = [header]
        for step in task.steps {
            var line = "  " + CommandOutput.pad(step.name, 22) + " " + CommandOutput.pad(step.status.contractName, 18) + " " + CommandOutput.attempts(of: step)
            if let error = errors[step.name], step.status != .complete { line += "  \(error)" }
            lines.append(line)
        }
        var output = previous > 0 ? "\u{1B}[\(previous)F" : ""
        for line in lines { output += "\u{1B}[2K" + line + "\n" }
        FileHandle.standardOutput.write(Data(output.utf8))
        return lines.count
    }

    private var header: String {
        let done = task.steps.filter { [.complete, .skipped, .resolvedManually].contains($0.status) }.count
        let total = max(task.steps.count, 1)
        let width = 24
        let filled = done * width / total
        return "\(task.name) \(task.taskID)  [" + String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            + "] \(done)/\(task.steps.count)  \(task.status.contractName)"
    }
}
