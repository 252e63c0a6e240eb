fn main() -> std::process::ExitCode {
    kfbox_app::main()
}
