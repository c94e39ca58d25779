import ArgumentParser
import Foundation
import TaskerEngine

/// The task a command works on: a UUID, as submit prints it. Anything else is a usage error
/// here, before any server is asked.
struct TaskIDArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The task id (a UUID, as submit prints it).", valueName: "task-id"))
    var value: String

    func validate() throws {
        guard UUID(uuidString: value) != nil else {
            throw ValidationError("\(InputCheck.quoted(value)) is not a task id: a task id is a UUID, as submit prints it")
        }
    }
}
