import Foundation
import SwiftProtobuf
import TaskerProto
import TaskerWorker

/// The order checkout: its template and the handlers of its steps.
enum Checkout {
    static func step(_ name: String, after dependencies: [String] = [], retries: Int32 = 3, backoff: Double = 0.5) -> Tasker_V1_StepTemplate {
        .with {
            $0.name = name
            $0.handler = name
            $0.dependsOn = dependencies
            $0.retryLimit = retries
            $0.backoff.baseSeconds = backoff
            $0.backoff.maxSeconds = 10
            $0.timeoutSeconds = 30
        }
    }

    static let template = Tasker_V1_TaskTemplate.with {
        $0.name = "order_checkout"
        $0.version = "1"
        $0.description_p = "Validate a cart, take the payment while reserving stock, create the order, confirm it."
        $0.contextSchemaJson = """
            {"type": "object", "required": ["cart_id", "email", "items"],
             "properties": {"cart_id": {"type": "integer"}, "email": {"type": "string"},
                            "items": {"type": "array", "minItems": 1},
                            "payment_failures": {"type": "integer", "minimum": 0}}}
            """
        $0.steps = [
            step("validate_cart"),
            step("process_payment", after: ["validate_cart"], retries: 4),
            step("reserve_inventory", after: ["validate_cart"]),
            step("create_order", after: ["process_payment", "reserve_inventory"]),
            step("send_confirmation", after: ["create_order"]),
        ]
    }

    /// Stands in for the call to another system that each step makes.
    static func work(_ milliseconds: Int) async throws {
        try await Task.sleep(for: .milliseconds(milliseconds))
    }

    static func results(_ fields: [String: Google_Protobuf_Value]) -> StepOutput {
        StepOutput(results: Google_Protobuf_Struct(fields: fields))
    }

    /// Registers the handlers of every step on `worker`.
    static func handle(on worker: Worker) {
        worker.handle("validate_cart") { step in
            try await work(150)
            let items = step.context.fields["items"]?.listValue.values ?? []
            guard !items.isEmpty else { throw StepFailure.permanent("the cart is empty") }
            let total = items.reduce(0.0) { sum, item in
                sum + (item.structValue.fields["price"]?.numberValue ?? 0) * (item.structValue.fields["quantity"]?.numberValue ?? 1)
            }
            return results(["items": .init(numberValue: Double(items.count)), "total": .init(numberValue: total)])
        }

        worker.handle("process_payment") { step in
            try await work(300)
            let failures = Int32(step.context.fields["payment_failures"]?.numberValue ?? 0)
            if step.attempt <= failures {
                throw StepFailure.retryable("payment gateway timed out (attempt \(step.attempt))")
            }
            let total = step.dependencyResults["validate_cart"]?.fields["total"]?.numberValue ?? 0
            // A note for people reading the task: which gateway took the payment, after how many tries.
            let note = Tasker_V1_Annotation.with {
                $0.type = "payment"
                $0.annotation = Google_Protobuf_Struct(fields: [
                    "gateway": .init(stringValue: "example-pay"), "attempts": .init(numberValue: Double(step.attempt)),
                ])
            }
            return StepOutput(
                results: Google_Protobuf_Struct(fields: ["payment_id": .init(stringValue: "pay_\(step.taskID.suffix(8))"), "amount": .init(numberValue: total)]),
                annotations: [note])
        }

        worker.handle("reserve_inventory") { step in
            try await work(250)
            return results(["reservation_id": .init(stringValue: "res_\(step.taskID.suffix(8))")])
        }

        worker.handle("create_order") { step in
            try await work(200)
            let payment = step.dependencyResults["process_payment"]?.fields["payment_id"]?.stringValue ?? ""
            let reservation = step.dependencyResults["reserve_inventory"]?.fields["reservation_id"]?.stringValue ?? ""
            return results([
                "order_id": .init(stringValue: "ord_\(step.taskID.suffix(8))"),
                "payment_id": .init(stringValue: payment), "reservation_id": .init(stringValue: reservation),
            ])
        }

        worker.handle("send_confirmation") { step in
            try await work(150)
            return results(["sent_to": step.context.fields["email"] ?? .init(stringValue: "")])
        }
    }
}
