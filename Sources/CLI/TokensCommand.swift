import ArgumentParser
import Auth
import Foundation

/// `sutra tokens`: manage a node's client tokens file. The file holds only SHA-256 digests; a new token is
/// printed once, here, and cannot be recovered later (add a new one and remove the old line instead).
struct TokensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokens", abstract: "Create and list client bearer tokens (roles read, write, admin).",
                                                    subcommands: [Add.self, List.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token: print it once and append its SHA-256 to the tokens file (created 0600 if missing). Then send the nodes SIGHUP.")
        @Argument(help: "The token's name (1…64 of A-Z a-z 0-9 . _ @ -), shown in the nodes' logs.") var name: String
        @Option(help: "read, write or admin (admin ⊃ write ⊃ read).") var role: String
        @Option(help: "The tokens file (the nodes' --tokens-file).") var file: String

        func run() throws {
            guard TokenFile.isValidName(name) else { throw ValidationError("name '\(name)' must be 1…64 characters of A-Z a-z 0-9 . _ @ -") }
            guard let r = Role(name: role) else { throw ValidationError("--role is '\(role)'; allowed: read, write, admin") }
            print(try TokensCommand.add(name: name, role: r, file: file))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the names and roles in a tokens file (the tokens themselves are not stored).")
        @Option(help: "The tokens file.") var file: String

        func run() throws {
            do {
                for e in try TokenFile.load(path: file) { print("\(e.name)\t\(e.role)") }
            } catch {
                throw CLIError("\(error)")
            }
        }
    }

    /// Creates a token, appends its digest to `file`, and returns the token.
    static func add(name: String, role: Role, file: String) throws -> String {
        guard let token = TokenGenerator.newToken() else { throw CLIError("the random generator failed; no token was created") }
        do {
            try TokenFile.append(TokenEntry(name: name, role: role, digest: TokenDigest(token: Array(token.utf8))), to: file)
        } catch {
            throw CLIError("\(error)")
        }
        return token
    }
}
