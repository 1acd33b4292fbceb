#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

let usage = """
    usage: frontdoor COMMAND [OPTIONS]

    Split-horizon DNS, dynamic DNS and a Host-routing reverse proxy from one model.

    commands:
      run [--config DIR] [--dns|--http ADDR:PORT] serve DNS, the proxy and DynDNS from the model (see 'frontdoor run --help')
      init DIR --domain NAME [--site N=URL]...   write a first model from this machine's network
      check [DIR]                                check the model in DIR (default /etc/frontdoor)
      export --view VIEW [--zone ZONE] [DIR]     print a zone as VIEW sees it (RFC 1035 text)
      explain NAME [TYPE] --from ADDRESS [DIR]   show what a client gets for NAME, and the route
      status [DIR]                               the WAN address and each DynDNS provider's state
      ca export [DIR]                            print the internal CA's root certificate, for devices to trust
      help [COMMAND]                             show help for a command

    Run 'frontdoor COMMAND --help' for a command's options.
    """

let commands: [String: (help: String, run: ([String]) throws(UsageError) -> ExitCode)] = [
    "run": (RunCommand.help, RunCommand.run),
    "init": (InitCommand.help, InitCommand.run),
    "check": (CheckCommand.help, CheckCommand.run),
    "export": (ExportCommand.help, ExportCommand.run),
    "explain": (ExplainCommand.help, ExplainCommand.run),
    "status": (StatusCommand.help, StatusCommand.run),
    "ca": (CACommand.help, CACommand.run),
]

@MainActor
func main() -> ExitCode {
    var words = Array(CommandLine.arguments.dropFirst())
    guard let name = words.first else {
        printError(usage)
        return .usage
    }
    words.removeFirst()
    if name == "--help" || name == "-h" {
        print(usage)
        return .ok
    }
    if name == "help" {
        guard let topic = words.first else {
            print(usage)
            return .ok
        }
        guard let command = commands[topic] else {
            printError("frontdoor: unknown command '\(topic)'\n\n\(usage)")
            return .usage
        }
        print(command.help)
        return .ok
    }
    guard let command = commands[name] else {
        printError("frontdoor: unknown command '\(name)'\n\n\(usage)")
        return .usage
    }
    if words.contains("--help") || words.contains("-h") {
        print(command.help)
        return .ok
    }
    do {
        return try command.run(words)
    } catch {
        printError("frontdoor \(name): \(error.message)\n\n\(command.help)")
        return .usage
    }
}

exit(main().rawValue)
