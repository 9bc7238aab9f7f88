//! `completion`: shell completion scripts, generated from the same command definitions as `--help`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, EXIT_OK};

/// Print a shell completion script for bash, zsh, fish, elvish or powershell.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    source <(hanzo-s3-operator completion bash)                                   # this shell\n  \
    hanzo-s3-operator completion bash > /etc/bash_completion.d/hanzo-s3-operator   # every new shell\n  \
    hanzo-s3-operator completion zsh > \"${fpath[1]}/_hanzo-s3-operator\"\n  \
    hanzo-s3-operator completion fish > ~/.config/fish/completions/hanzo-s3-operator.fish")]
pub struct CompletionArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

const BIN: &str = "hanzo-s3-operator";

pub fn run(args: &CompletionArgs) -> u8 {
    // A closed pipe is not worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), script(args.shell).as_bytes());
    EXIT_OK
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
    let script = String::from_utf8_lossy(&out).into_owned();
    if shell == Shell::Bash {
        // clap_complete 4.6 names a subcommand's case after the binary with `-` turned into
        // `__subcmd__`, but the loop that picks the case with `-` turned into `__`: for a binary
        // with a hyphen no subcommand's options would ever complete. Same names on both sides.
        let wrong = BIN.replace('-', "__subcmd__");
        let right = BIN.replace('-', "__");
        return script.replace(&format!("{wrong}__subcmd__"), &format!("{right}__subcmd__"));
    }
    script
}
