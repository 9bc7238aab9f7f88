//! `completion bash|zsh|fish`: each script loaded in its own shell completes subcommands and
//! option values (zsh and fish come from scripts/setup.sh).

use std::process::Command;

fn script(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
        .args(["completion", shell])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn shell(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed (scripts/setup.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completes_subcommands_options_and_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.bash");
    std::fs::write(&file, script("bash")).unwrap();
    let complete = |words: &str, cword: usize, cur: &str, prev: &str| {
        shell(
            "bash",
            &[
                "-c",
                &format!(
                    "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; _hanzo__s3__operator hanzo-s3-operator '{cur}' '{prev}'; echo \"${{COMPREPLY[@]}}\"",
                    file.display()
                ),
            ],
        )
        .trim()
        .to_owned()
    };
    assert_eq!(
        complete("hanzo-s3-operator val", 1, "val", "hanzo-s3-operator"),
        "validate"
    );
    assert_eq!(
        complete("hanzo-s3-operator validate -o ''", 3, "", "-o"),
        "text json github junit sarif"
    );
    assert_eq!(
        complete("hanzo-s3-operator completion ''", 2, "", "completion"),
        "-h --help bash elvish fish powershell zsh"
    );
    assert!(complete("hanzo-s3-operator dev --", 2, "--", "dev").contains("--real-node"));
}

#[test]
fn fish_completes_subcommands_and_option_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.fish");
    std::fs::write(&file, script("fish")).unwrap();
    let complete = |line: &str| {
        shell(
            "fish",
            &[
                "-c",
                &format!("source {}; complete -C '{line}'", file.display()),
            ],
        )
    };
    let subcommands = complete("hanzo-s3-operator val");
    assert!(
        subcommands.starts_with("validate\tCheck Tenant manifests offline"),
        "{subcommands}"
    );
    let formats: Vec<String> = complete("hanzo-s3-operator validate -o ")
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        formats,
        ["github", "json", "junit", "sarif", "text"],
        "fish sorts them"
    );
}

#[test]
fn zsh_loads_the_completion_function() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("_hanzo-s3-operator"), script("zsh")).unwrap();
    shell(
        "zsh",
        &[
            "-n",
            &dir.path().join("_hanzo-s3-operator").display().to_string(),
        ],
    );
    let loaded = shell(
        "zsh",
        &[
            "-c",
            &format!(
                "fpath=({} $fpath); autoload -Uz compinit; compinit -u -D; autoload -Uz _hanzo-s3-operator; whence -w _hanzo-s3-operator; echo $_comps[hanzo-s3-operator]",
                dir.path().display()
            ),
        ],
    );
    assert_eq!(
        loaded.lines().collect::<Vec<_>>(),
        ["_hanzo-s3-operator: function", "_hanzo-s3-operator"]
    );
}
