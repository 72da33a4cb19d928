//! `asl-lint FILE...`: prints every finding and exits 1 if there is any.

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: asl-lint FILE.asl.json...");
        std::process::exit(2);
    }
    let mut failed = false;
    for file in files {
        let findings = match std::fs::read_to_string(&file) {
            Ok(text) => asl_lint::lint_str(&text),
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                failed = true;
                continue;
            }
        };
        for finding in &findings {
            eprintln!("{file}: {finding}");
        }
        failed |= !findings.is_empty();
        if findings.is_empty() {
            println!("{file}: ok");
        }
    }
    std::process::exit(i32::from(failed));
}
