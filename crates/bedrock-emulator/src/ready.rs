//! The readiness announcement a launcher waits for: one JSON line with the bound endpoint, printed
//! on stdout and optionally written to a file.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

pub fn ready_line(local_addr: SocketAddr) -> String {
    serde_json::json!({ "endpoint": format!("http://{local_addr}") }).to_string()
}

/// Writes `line` + newline to a temporary file next to `path` and renames it into place, so a
/// launcher polling for the file never reads it half-written.
pub fn write_ready_file(path: &Path, line: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    {
        let mut file = std::fs::File::create(temporary)?;
        writeln!(file, "{line}")?;
        file.sync_all()?;
    }
    std::fs::rename(temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_is_one_json_object_with_the_endpoint() {
        let line = ready_line("127.0.0.1:4567".parse().unwrap());
        assert_eq!(line, r#"{"endpoint":"http://127.0.0.1:4567"}"#);
    }

    #[test]
    fn ready_file_holds_the_line() {
        let path = std::env::temp_dir().join(format!(
            "bedrock-emulator-ready-{}.json",
            uuid::Uuid::new_v4()
        ));
        write_ready_file(&path, "{\"endpoint\":\"x\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"endpoint\":\"x\"}\n"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
