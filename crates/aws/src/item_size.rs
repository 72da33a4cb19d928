//! The size DynamoDB charges an item against its 400 KB limit, by AWS's documented rules, so
//! tests can show that every item the service writes stays under it however long it runs.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// DynamoDB's hard limit on one item: 400 KB, attribute names included.
pub const ITEM_LIMIT_BYTES: usize = 400 * 1024;

/// Attribute names plus values: strings and binaries by length, numbers by significant digits
/// (about one byte per two digits, plus one), 1 byte for booleans and nulls, 3 bytes per list or
/// map plus 1 byte per element.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(items) => items.iter().map(String::len).sum(),
        AttributeValue::Ns(items) => items.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(items) => items.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(items) => 3 + items.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 1)
                .sum::<usize>()
        }
        _ => 0,
    }
}

fn number_size(n: &str) -> usize {
    let digits = n
        .trim_start_matches('-')
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    (significant.max(1).div_ceil(2) + 1).min(21)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_documented_rules() {
        let item = HashMap::from([
            ("a".to_string(), AttributeValue::S("xyz".into())),
            ("n".to_string(), AttributeValue::N("12345".into())),
            ("b".to_string(), AttributeValue::Bool(true)),
            (
                "m".to_string(),
                AttributeValue::M(HashMap::from([(
                    "k".to_string(),
                    AttributeValue::S("v".into()),
                )])),
            ),
        ]);
        // a+3, n+(3+1), b+1, m+(3 + k+v+1)
        assert_eq!(item_size(&item), 4 + 5 + 2 + 7);
        assert_eq!(number_size("1000000"), 2);
        assert_eq!(number_size(&"9".repeat(38)), 20);
    }
}
