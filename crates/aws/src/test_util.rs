//! Builders for the unit tests of the functions (feature `test-util`): what DynamoDB answers
//! through `aws-smithy-mocks` when a conditional write's condition does not hold.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_smithy_types::error::ErrorMetadata;

use crate::error::CONDITION_FAILED;

/// The ConditionalCheckFailedException of a conditional write, with its error code.
pub fn condition_failed() -> ConditionalCheckFailedException {
    ConditionalCheckFailedException::builder()
        .meta(ErrorMetadata::builder().code(CONDITION_FAILED).build())
        .build()
}

/// An UpdateItem whose condition did not hold.
pub fn update_condition_failed() -> UpdateItemError {
    UpdateItemError::ConditionalCheckFailedException(condition_failed())
}

/// A PutItem whose condition did not hold.
pub fn put_condition_failed() -> PutItemError {
    PutItemError::ConditionalCheckFailedException(condition_failed())
}
