//! An in-process table with DynamoDB's semantics (stub; being written).
