//! `roster completions SHELL` and `roster man --out DIR`: the command line described for
//! shells and for `man`, from the same clap definition `cli` parses with (handed over as
//! a `clap::Command`, so `ops` needs no `cli` type).

use std::path::PathBuf;

use anyhow::Context;

use super::Exit;

/// Options of `roster completions`.
#[derive(Debug)]
pub struct Completions {
    pub shell: clap_complete::Shell,
    pub command: clap::Command,
}

/// Options of `roster man`.
#[derive(Debug)]
pub struct Man {
    pub out: PathBuf,
    pub command: clap::Command,
}

/// Prints the completion script of `shell` on stdout.
pub fn completions(o: Completions) -> anyhow::Result<Exit> {
    let mut command = o.command;
    let name = command.get_name().to_string();
    // Into a buffer first: clap_complete panics on a failed write (a closed pipe).
    let mut buf = Vec::new();
    clap_complete::generate(o.shell, &mut command, name, &mut buf);
    match std::io::Write::write_all(&mut std::io::stdout(), &buf) {
        Ok(()) => Ok(Exit::Success),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Success),
        Err(e) => Err(e).context("cannot write the completion script"),
    }
}

/// Writes `roster.1` and `roster-<command>.1` (every command and sub-command) into `out`.
pub fn man(o: Man) -> anyhow::Result<Exit> {
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create the directory {}", o.out.display()))?;
    let mut command = o.command;
    command.build();
    let mut written = 0;
    write_pages(&command, &o.out, &mut written)?;
    anstream::eprintln!(
        "wrote {written} man page{} into {}",
        super::term::s(written),
        o.out.display()
    );
    Ok(Exit::Success)
}

fn write_pages(
    command: &clap::Command,
    out: &std::path::Path,
    written: &mut usize,
) -> anyhow::Result<()> {
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_string();
    let path = out.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut buf)
        .with_context(|| format!("cannot render the man page of {name}"))?;
    std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
    *written += 1;
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_pages(sub, out, written)?;
    }
    Ok(())
}
