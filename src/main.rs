fn main() -> std::process::ExitCode {
    fishapp::cli::main()
}
