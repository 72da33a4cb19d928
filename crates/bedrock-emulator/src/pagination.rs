//! maxResults / nextToken paging over an already sorted list.
//!
//! The token is an opaque offset. Like Bedrock's, it is only meaningful with the same request
//! parameters; items added between pages may shift what the next page starts with.

use crate::errors::ApiError;

const TOKEN_PREFIX: &str = "emulator-page-";
/// Bedrock's maxResults range for the list operations served here.
pub const MAX_RESULTS_LIMIT: i64 = 1000;

pub fn paginate<T>(
    items: Vec<T>,
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let page_size = match max_results {
        None => MAX_RESULTS_LIMIT as usize,
        Some(value) if (1..=MAX_RESULTS_LIMIT).contains(&value) => value as usize,
        Some(value) => {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy constraint: \
                 Member must have value between 1 and {MAX_RESULTS_LIMIT}"
            )))
        }
    };
    let offset = match next_token {
        None => 0,
        Some(token) => token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|offset| offset.parse::<usize>().ok())
            .filter(|offset| *offset <= items.len())
            .ok_or_else(|| ApiError::Validation(format!("Invalid nextToken: {token}")))?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(page_size).collect();
    let next_offset = offset + page.len();
    let next_token = (next_offset < total).then(|| format!("{TOKEN_PREFIX}{next_offset}"));
    Ok((page, next_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_everything_once() {
        let items: Vec<u32> = (0..5).collect();
        let (first, token) = paginate(items.clone(), Some(2), None).unwrap();
        assert_eq!(first, vec![0, 1]);
        let (second, token) = paginate(items.clone(), Some(2), token.as_deref()).unwrap();
        assert_eq!(second, vec![2, 3]);
        let (third, token) = paginate(items, Some(2), token.as_deref()).unwrap();
        assert_eq!(third, vec![4]);
        assert_eq!(token, None);
    }

    #[test]
    fn bad_max_results_and_tokens_are_validation_errors() {
        assert!(matches!(
            paginate(vec![1], Some(0), None),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            paginate(vec![1], Some(1001), None),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            paginate(vec![1], None, Some("garbage")),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            paginate(vec![1], None, Some("emulator-page-5")),
            Err(ApiError::Validation(_))
        ));
    }
}
