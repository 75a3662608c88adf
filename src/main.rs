//! The `spliceboost` binary: parse, run, and print any error once with its causes.

use clap::Parser;

fn main() {
    // Die quietly when a reader such as `head` closes the pipe, as command-line tools do,
    // instead of panicking on the next print.
    #[cfg(unix)]
    // SAFETY: called first thing, before any thread exists, to restore the default handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match spliceboost::run::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, with exit code 0.
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Err(err) = spliceboost::run::execute(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(spliceboost::error::exit_code(&err));
    }
}
