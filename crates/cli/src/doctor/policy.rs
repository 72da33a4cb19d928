//! Does an IAM policy document allow an action? Enough of IAM's evaluation for a setup check:
//! Allow statements by Action/NotAction with wildcards, explicit Deny on every resource wins.
//! Resources and conditions of Allow statements are not evaluated (the template scopes them
//! to the stack's own resources; a wrong resource shows up as AccessDenied in the logs).

use serde_json::Value;

/// One statement, reduced to what the check evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub allow: bool,
    /// Action patterns; `not` when the statement used NotAction.
    pub actions: Vec<String>,
    pub not: bool,
    /// True when the statement applies to every resource ("*").
    pub all_resources: bool,
}

/// IAM returns inline and managed policy documents URL-encoded; the local stack and some
/// tools return them plain.
pub fn decode_document(text: &str) -> String {
    if text.trim_start().starts_with('{') {
        text.to_string()
    } else {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

pub fn parse(document: &str) -> Result<Vec<Statement>, String> {
    let doc: Value = serde_json::from_str(&decode_document(document))
        .map_err(|e| format!("policy document is not JSON: {e}"))?;
    let statements = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        _ => return Err("policy document has no Statement".into()),
    };
    Ok(statements
        .iter()
        .map(|s| {
            let not = s.get("NotAction").is_some();
            Statement {
                allow: s["Effect"].as_str() == Some("Allow"),
                actions: strings(s.get(if not { "NotAction" } else { "Action" })),
                not,
                all_resources: strings(s.get("Resource")).iter().any(|r| r == "*"),
            }
        })
        .collect())
}

/// IAM action matching: case-insensitive, `*` any run, `?` one character.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

fn applies(statement: &Statement, action: &str) -> bool {
    let listed = statement.actions.iter().any(|p| action_matches(p, action));
    listed != statement.not
}

/// Allowed by some Allow statement and not denied for every resource.
pub fn allows(statements: &[Statement], action: &str) -> bool {
    let denied = statements
        .iter()
        .any(|s| !s.allow && s.all_resources && applies(s, action));
    !denied && statements.iter().any(|s| s.allow && applies(s, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_case() {
        assert!(action_matches("dynamodb:*", "dynamodb:UpdateItem"));
        assert!(action_matches("DynamoDB:updateitem", "dynamodb:UpdateItem"));
        assert!(action_matches("sqs:*Message", "sqs:ReceiveMessage"));
        assert!(action_matches("s?s:SendMessage", "sqs:SendMessage"));
        assert!(!action_matches("dynamodb:Put*", "dynamodb:UpdateItem"));
        assert!(!action_matches("sqs:SendMessage", "sqs:SendMessageBatch"));
    }

    #[test]
    fn allow_deny_and_not_action() {
        let doc = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:UpdateItem"],"Resource":"arn:aws:dynamodb:us-east-1:1:table/t"},
            {"Effect":"Allow","NotAction":"iam:*","Resource":"arn:aws:sqs:us-east-1:1:q"},
            {"Effect":"Deny","Action":"sqs:DeleteQueue","Resource":"*"}
        ]}"#;
        let statements = parse(doc).unwrap();
        assert!(allows(&statements, "dynamodb:UpdateItem"));
        assert!(
            allows(&statements, "sqs:SendMessage"),
            "NotAction allows everything else"
        );
        assert!(!allows(&statements, "iam:PassRole"));
        assert!(
            !allows(&statements, "sqs:DeleteQueue"),
            "explicit deny wins"
        );
    }

    #[test]
    fn url_encoded_documents_and_single_statements() {
        let encoded = "%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22sns%3APublish%22%2C%22Resource%22%3A%22%2A%22%7D%7D";
        let statements = parse(encoded).unwrap();
        assert!(allows(&statements, "sns:Publish"));
        assert!(!allows(&statements, "sns:Subscribe"));
        assert!(parse("%7Bnot json").unwrap_err().contains("not JSON"));
    }
}
