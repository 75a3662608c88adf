//! The `spliceboost` binary: parse, run, and print any error once with its causes.

use clap::Parser;

fn main() {
    // Die quietly when a reader such as `head` closes the pipe, as command-line tools do,
    // instead of panicking on the next print.
    // A file-size limit (`ulimit -f`) kills a process that passes it with SIGXFSZ, silently;
    // ignored, the write fails with EFBIG instead and the run reports which file and why.
    #[cfg(unix)]
    // SAFETY: called first thing, before any thread exists, to set process-wide dispositions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
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
