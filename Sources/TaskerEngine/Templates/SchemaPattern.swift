/// A JSON Schema `pattern`, matched in time linear in the text: the ECMA-262 syntax JSON
/// Schema names, compiled to a program that is run as a Pike VM (every thread advances in
/// step, one text position at a time), so no pattern can backtrack catastrophically.
/// NSRegularExpression took about a second of an event loop for `(a+)+$` on 30 characters.
///
/// Taken: literals and escapes (`\t \n \r \f \v \0 \xHH \uHHHH`, escaped punctuation), `.`,
/// classes (`[a-z]`, `[^…]`, `\d \D \w \W \s \S`), groups (`(…)`, `(?:…)`, `(?<name>…)`),
/// `|`, `* + ?`, `{n}`, `{n,}`, `{n,m}` (lazy forms too: whether a match exists does not depend
/// on laziness), `^ $ \b \B`. Refused at registration, with the reason: back-references and
/// lookaround (no linear-time engine has them), patterns over `maxLength` characters, and
/// programs over `maxProgram` instructions (counted repetition is unrolled).
public struct SchemaPattern: Sendable {
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public static let maxLength = 1024
    public static let maxProgram = 20_000
    /// Thread steps one match may take: past it, the value is refused as too costly to check
    /// rather than hold a thread longer. A step is one instruction for one text position.
    public static let stepBudget = 10_000_000

    public let source: String
    private let program: [Instruction]

    public init(_ source: String) throws(Invalid) {
        guard source.unicodeScalars.count <= Self.maxLength else {
            throw Invalid(reason: "the pattern is \(source.unicodeScalars.count) characters long, over the limit of \(Self.maxLength)")
        }
        var parser = Parser(Array(source.unicodeScalars))
        let tree = try parser.parse()
        var compiler = Compiler()
        try compiler.emit(tree)
        compiler.program.append(.match)
        self.source = source
        program = compiler.program
    }

    public enum Outcome: Equatable, Sendable {
        case matched, unmatched
        /// The step budget ran out before the answer was known.
        case tooCostly
    }

    /// Whether the pattern matches anywhere in `text` (JSON Schema patterns are not anchored).
    public func match(_ text: String) -> Outcome {
        let scalars = Array(text.unicodeScalars)
        var current = ThreadList(size: program.count)
        var next = ThreadList(size: program.count)
        var steps = 0
        var position = 0
        while true {
            // A match may start at every position.
            if add(0, at: position, in: scalars, to: &current, steps: &steps) { return .matched }
            if steps > Self.stepBudget { return .tooCostly }
            guard position < scalars.count else { return .unmatched }
            let scalar = scalars[position]
            next.clear()
            for pc in current.threads {
                steps += 1
                let advances: Bool
                switch program[pc] {
                case .scalar(let expected): advances = scalar == expected
                case .set(let set): advances = set.contains(scalar)
                case .any: advances = !Self.isLineTerminator(scalar)
                default: advances = false
                }
                if advances, add(pc + 1, at: position + 1, in: scalars, to: &next, steps: &steps) { return .matched }
            }
            if steps > Self.stepBudget { return .tooCostly }
            swap(&current, &next)
            position += 1
        }
    }

    /// Adds the thread at `pc` and every thread it leads to without reading a character;
    /// true when one of them is a match.
    private func add(_ pc: Int, at position: Int, in scalars: [Unicode.Scalar], to list: inout ThreadList, steps: inout Int) -> Bool {
        var stack = [pc]
        while let pc = stack.popLast() {
            guard list.insert(pc) else { continue }
            steps += 1
            switch program[pc] {
            case .match:
                return true
            case .jump(let target):
                stack.append(target)
            case .split(let first, let second):
                stack.append(second)
                stack.append(first)
            case .start:
                if position == 0 { stack.append(pc + 1) }
            case .end:
                if position == scalars.count { stack.append(pc + 1) }
            case .wordBoundary(let wanted):
                let before = position > 0 && ScalarSet.word.contains(scalars[position - 1])
                let after = position < scalars.count && ScalarSet.word.contains(scalars[position])
                if (before != after) == wanted { stack.append(pc + 1) }
            case .scalar, .set, .any:
                list.threads.append(pc)
            }
        }
        return false
    }

    static func isLineTerminator(_ scalar: Unicode.Scalar) -> Bool {
        [0x0A, 0x0D, 0x2028, 0x2029].contains(scalar.value)
    }

    // MARK: Program

    enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        case set(ScalarSet)
        case any
        case split(Int, Int)
        case jump(Int)
        case start, end
        case wordBoundary(Bool)
        case match
    }

    /// The threads at one text position: each instruction at most once.
    private struct ThreadList {
        var threads: [Int] = []
        private var seen: [Bool]
        private var marked: [Int] = []

        init(size: Int) {
            seen = Array(repeating: false, count: size)
        }

        mutating func insert(_ pc: Int) -> Bool {
            guard !seen[pc] else { return false }
            seen[pc] = true
            marked.append(pc)
            return true
        }

        mutating func clear() {
            for pc in marked { seen[pc] = false }
            marked.removeAll(keepingCapacity: true)
            threads.removeAll(keepingCapacity: true)
        }
    }

    /// A set of scalars as sorted, disjoint ranges.
    struct ScalarSet: Sendable {
        var ranges: [ClosedRange<UInt32>]

        init(_ ranges: [ClosedRange<UInt32>]) {
            let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
            var merged: [ClosedRange<UInt32>] = []
            for range in sorted {
                if let last = merged.last, range.lowerBound <= last.upperBound &+ 1 {
                    merged[merged.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
                } else {
                    merged.append(range)
                }
            }
            self.ranges = merged
        }

        func contains(_ scalar: Unicode.Scalar) -> Bool {
            var low = 0
            var high = ranges.count
            while low < high {
                let middle = (low + high) / 2
                if ranges[middle].upperBound < scalar.value { low = middle + 1 } else { high = middle }
            }
            return low < ranges.count && ranges[low].contains(scalar.value)
        }

        var inverted: ScalarSet {
            var result: [ClosedRange<UInt32>] = []
            var next: UInt32 = 0
            for range in ranges {
                if range.lowerBound > next { result.append(next...(range.lowerBound - 1)) }
                next = range.upperBound &+ 1
            }
            if next <= 0x10FFFF, ranges.last?.upperBound != 0x10FFFF { result.append(next...0x10FFFF) }
            return ScalarSet(result)
        }

        static let digit = ScalarSet([0x30...0x39])
        static let word = ScalarSet([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
        /// ECMA-262 WhiteSpace and LineTerminator.
        static let space = ScalarSet([0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
                                         0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF])
    }

    // MARK: Parsing

    indirect enum Node {
        case empty
        case scalar(Unicode.Scalar)
        case set(ScalarSet)
        case any
        case start, end
        case wordBoundary(Bool)
        case sequence([Node])
        case choice([Node])
        case repeated(Node, min: Int, max: Int?)
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var offset = 0
        var depth = 0

        init(_ scalars: [Unicode.Scalar]) {
            self.scalars = scalars
        }

        var peek: Unicode.Scalar? { offset < scalars.count ? scalars[offset] : nil }

        func fail(_ reason: String) -> Invalid {
            Invalid(reason: "\(reason) at character \(offset + 1)")
        }

        mutating func parse() throws(Invalid) -> Node {
            let node = try choice()
            guard offset == scalars.count else { throw fail("unmatched ')'") }
            return node
        }

        mutating func choice() throws(Invalid) -> Node {
            var options = [try sequence()]
            while peek == "|" {
                offset += 1
                options.append(try sequence())
            }
            return options.count == 1 ? options[0] : .choice(options)
        }

        mutating func sequence() throws(Invalid) -> Node {
            var items: [Node] = []
            while let scalar = peek, scalar != "|", scalar != ")" {
                let atom = try self.atom()
                items.append(try quantified(atom))
            }
            return items.count == 1 ? items[0] : items.isEmpty ? .empty : .sequence(items)
        }

        mutating func quantified(_ atom: Node) throws(Invalid) -> Node {
            var bounds: (Int, Int?)?
            switch peek {
            case "*": bounds = (0, nil); offset += 1
            case "+": bounds = (1, nil); offset += 1
            case "?": bounds = (0, 1); offset += 1
            case "{":
                if let counted = try counted() { bounds = counted }
            default: break
            }
            guard let (min, max) = bounds else { return atom }
            switch atom {
            case .start, .end, .wordBoundary: throw fail("nothing to repeat")
            default: break
            }
            if peek == "?" { offset += 1 }
            if let next = peek, "*+?".unicodeScalars.contains(next) { throw fail("nothing to repeat") }
            return .repeated(atom, min: min, max: max)
        }

        /// `{n}`, `{n,}` or `{n,m}`; nil (and nothing read) when the brace is a literal.
        mutating func counted() throws(Invalid) -> (Int, Int?)? {
            let start = offset
            offset += 1
            func number(_ parser: inout Parser) -> Int? {
                var value = 0
                var digits = 0
                while let scalar = parser.peek, ("0"..."9").contains(scalar) {
                    value = min(value * 10 + Int(scalar.value - 48), 100_000)
                    digits += 1
                    parser.offset += 1
                }
                return digits > 0 ? value : nil
            }
            guard let low = number(&self) else { offset = start; return nil }
            var high: Int? = low
            if peek == "," {
                offset += 1
                high = number(&self)
            }
            guard peek == "}" else { offset = start; return nil }
            offset += 1
            if let high, high < low { throw fail("{\(low),\(high)} has its numbers out of order") }
            return (low, high)
        }

        mutating func atom() throws(Invalid) -> Node {
            let scalar = scalars[offset]
            offset += 1
            switch scalar {
            case ".": return .any
            case "^": return .start
            case "$": return .end
            case "[": return .set(try characterClass())
            case "(":
                depth += 1
                guard depth <= 100 else { throw fail("groups nested over 100 deep") }
                defer { depth -= 1 }
                if peek == "?" {
                    offset += 1
                    switch peek {
                    case ":": offset += 1
                    case "<" where offset + 1 < scalars.count && scalars[offset + 1] != "=" && scalars[offset + 1] != "!":
                        while let next = peek, next != ">" { offset += 1 }
                        guard peek == ">" else { throw fail("unterminated group name") }
                        offset += 1
                    default: throw fail("lookaround is not supported (it cannot be matched in linear time)")
                    }
                }
                let inner = try choice()
                guard peek == ")" else { throw fail("missing ')'") }
                offset += 1
                return inner
            case "*", "+", "?":
                offset -= 1
                throw fail("nothing to repeat")
            case "{":
                offset -= 1
                if try counted() != nil { throw fail("nothing to repeat") }
                offset += 1
                return .scalar("{")
            case "\\": return try escape(inClass: false)
            default: return .scalar(scalar)
            }
        }

        mutating func escape(inClass: Bool) throws(Invalid) -> Node {
            guard let scalar = peek else { throw fail("a pattern cannot end with '\\'") }
            offset += 1
            switch scalar {
            case "d": return .set(.digit)
            case "D": return .set(ScalarSet.digit.inverted)
            case "w": return .set(.word)
            case "W": return .set(ScalarSet.word.inverted)
            case "s": return .set(.space)
            case "S": return .set(ScalarSet.space.inverted)
            case "t": return .scalar("\t")
            case "n": return .scalar("\n")
            case "r": return .scalar("\r")
            case "f": return .scalar("\u{0C}")
            case "v": return .scalar("\u{0B}")
            case "0": return .scalar("\u{0}")
            case "b": return inClass ? .scalar("\u{08}") : .wordBoundary(true)
            case "B" where !inClass: return .wordBoundary(false)
            case "x": return .scalar(try hex(2))
            case "u": return .scalar(try hex(4))
            case "1"..."9": throw fail("back-references are not supported (they cannot be matched in linear time)")
            default:
                guard !scalar.properties.isAlphabetic, !("0"..."9").contains(scalar) else {
                    throw fail("'\\\(scalar)' is not an escape JSON Schema patterns have")
                }
                return .scalar(scalar)
            }
        }

        mutating func hex(_ count: Int) throws(Invalid) -> Unicode.Scalar {
            guard offset + count <= scalars.count,
                  let value = UInt32(String(String.UnicodeScalarView(scalars[offset..<(offset + count)])), radix: 16),
                  let scalar = Unicode.Scalar(value)
            else { throw fail("expected \(count) hex digits") }
            offset += count
            return scalar
        }

        mutating func characterClass() throws(Invalid) -> ScalarSet {
            var negated = false
            if peek == "^" {
                negated = true
                offset += 1
            }
            var ranges: [ClosedRange<UInt32>] = []
            while true {
                guard let scalar = peek else { throw fail("missing ']'") }
                // As in ECMA-262, `[]` matches nothing and `[^]` anything.
                if scalar == "]" { offset += 1; break }
                let low = try classMember()
                guard case .single(let lower) = low, peek == "-", offset + 1 < scalars.count, scalars[offset + 1] != "]" else {
                    ranges += low.ranges
                    continue
                }
                offset += 1
                guard case .single(let upper) = try classMember() else { throw fail("a range cannot end in a class escape") }
                guard lower.value <= upper.value else { throw fail("the range \(lower)-\(upper) is out of order") }
                ranges.append(lower.value...upper.value)
            }
            let set = ScalarSet(ranges)
            return negated ? set.inverted : set
        }

        enum ClassMember {
            case single(Unicode.Scalar)
            case set(ScalarSet)

            var ranges: [ClosedRange<UInt32>] {
                switch self {
                case .single(let scalar): [scalar.value...scalar.value]
                case .set(let set): set.ranges
                }
            }
        }

        mutating func classMember() throws(Invalid) -> ClassMember {
            let scalar = scalars[offset]
            offset += 1
            guard scalar == "\\" else { return .single(scalar) }
            switch try escape(inClass: true) {
            case .scalar(let escaped): return .single(escaped)
            case .set(let set): return .set(set)
            default: throw fail("'\\B' cannot stand in a class")
            }
        }
    }

    private struct Compiler {
        var program: [Instruction] = []

        mutating func append(_ instruction: Instruction) throws(Invalid) {
            guard program.count < SchemaPattern.maxProgram else {
                throw Invalid(reason: "the pattern compiles to over \(SchemaPattern.maxProgram) steps (counted repetition is unrolled); make it smaller")
            }
            program.append(instruction)
        }

        mutating func emit(_ node: Node) throws(Invalid) {
            switch node {
            case .empty: break
            case .scalar(let scalar): try append(.scalar(scalar))
            case .set(let set): try append(.set(set))
            case .any: try append(.any)
            case .start: try append(.start)
            case .end: try append(.end)
            case .wordBoundary(let wanted): try append(.wordBoundary(wanted))
            case .sequence(let items):
                for item in items { try emit(item) }
            case .choice(let options):
                var jumps: [Int] = []
                for (index, option) in options.enumerated() {
                    if index < options.count - 1 {
                        let split = program.count
                        try append(.split(split + 1, 0))
                        try emit(option)
                        jumps.append(program.count)
                        try append(.jump(0))
                        program[split] = .split(split + 1, program.count)
                    } else {
                        try emit(option)
                    }
                }
                for jump in jumps { program[jump] = .jump(program.count) }
            case .repeated(let inner, let min, let max):
                for _ in 0..<min { try emit(inner) }
                if let max {
                    // Each optional copy may be skipped to the end.
                    var splits: [Int] = []
                    for _ in min..<max {
                        splits.append(program.count)
                        try append(.split(program.count + 1, 0))
                        try emit(inner)
                    }
                    for split in splits { program[split] = .split(split + 1, program.count) }
                } else {
                    let loop = program.count
                    try append(.split(loop + 1, 0))
                    try emit(inner)
                    try append(.jump(loop))
                    program[loop] = .split(loop + 1, program.count)
                }
            }
        }
    }
}
