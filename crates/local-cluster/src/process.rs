//! Child processes of one control plane: one process group, one log file each, and a watchdog that
//! kills the group and removes the directory when the test process goes away by any route (a
//! panic, a `process::exit`, or a shared instance in a `static`, which is never dropped).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::Error;

/// A component's name, binary, arguments and extra environment.
type Started = (String, PathBuf, Vec<String>, Vec<(String, String)>);

pub struct Processes {
    dir: PathBuf,
    log_dir: PathBuf,
    group: Option<i32>,
    children: Vec<(String, Child)>,
    /// How each child was started, to start it again.
    commands: Vec<Started>,
    watchdog: Option<Child>,
}

impl Processes {
    pub fn new(dir: &Path) -> Result<Processes, Error> {
        let log_dir = dir.join("logs");
        std::fs::create_dir_all(&log_dir).map_err(|e| Error::io("create the log directory", e))?;
        Ok(Processes {
            dir: dir.to_owned(),
            log_dir,
            group: None,
            children: Vec::new(),
            commands: Vec::new(),
            watchdog: None,
        })
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Starts `binary args...` with stdout and stderr in `logs/<name>.log`.
    pub fn spawn(&mut self, name: &str, binary: &Path, args: &[String]) -> Result<u32, Error> {
        self.spawn_with_env(name, binary, args, &[])
    }

    /// Like [`Processes::spawn`], with extra environment variables. Returns the pid.
    pub fn spawn_with_env(
        &mut self,
        name: &str,
        binary: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<u32, Error> {
        let log_path = self.log_dir.join(format!("{name}.log"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io("create a log file", e))?;
        let err_log = log
            .try_clone()
            .map_err(|e| Error::io("open a log file", e))?;
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .process_group(self.group.unwrap_or(0));
        let child = cmd.spawn().map_err(|e| Error::Spawn {
            name: name.to_owned(),
            binary: binary.to_owned(),
            source: e,
        })?;
        if self.group.is_none() {
            let pgid = child.id() as i32;
            self.group = Some(pgid);
            self.start_watchdog(pgid)?;
        }
        let pid = child.id();
        self.children.push((name.to_owned(), child));
        self.commands.retain(|(n, ..)| n != name);
        self.commands.push((
            name.to_owned(),
            binary.to_owned(),
            args.to_vec(),
            env.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ));
        Ok(pid)
    }

    /// Kills `name` (SIGKILL: a crash, not a shutdown) and starts it again as it was started
    /// (same arguments, same data directory; its log continues).
    pub fn restart(&mut self, name: &str) -> Result<u32, Error> {
        let (_, binary, args, env) = self
            .commands
            .iter()
            .find(|(n, ..)| n == name)
            .cloned()
            .ok_or_else(|| Error::Kubeconfig(format!("no component named {name}")))?;
        if let Some(i) = self.children.iter().position(|(n, _)| n == name) {
            let (_, mut child) = self.children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.spawn_with_env(name, &binary, &args, &env)
    }

    fn start_watchdog(&mut self, pgid: i32) -> Result<(), Error> {
        // Polls the test process; when it is gone, kills the whole group, undoes what a real node
        // made (node-cleanup.sh, present only when one ran) and removes the directory, never
        // crossing into a file system mounted below it.
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill -9 -{pgid} 2>/dev/null; \
             [ -f '{dir}/node-cleanup.sh' ] && sh '{dir}/node-cleanup.sh' '{dir}'; rm -rf --one-file-system '{dir}'",
            parent = std::process::id(),
            dir = self.dir.display()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io("start the watchdog", e))?;
        self.watchdog = Some(child);
        Ok(())
    }

    /// A component that has exited, with its status, if any did.
    pub fn exited(&mut self) -> Option<String> {
        self.children.iter_mut().find_map(|(name, child)| {
            child
                .try_wait()
                .ok()
                .flatten()
                .map(|status| format!("{name} exited ({status})"))
        })
    }

    /// The last `lines` lines of every component's log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for (name, _) in &self.children {
            let path = self.log_dir.join(format!("{name}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            out.push_str(&format!(
                "----- {} (last {} lines) -----\n",
                path.display(),
                tail.len()
            ));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    pub fn stop(&mut self) {
        if let Some(pgid) = self.group.take() {
            // SAFETY: kill(2) on our own process group has no memory-safety preconditions.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        for (_, child) in &mut self.children {
            let _ = child.wait();
        }
        self.children.clear();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let cleanup = self.dir.join("node-cleanup.sh");
        if cleanup.is_file() {
            let _ = Command::new("sh").arg(&cleanup).arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop();
    }
}
