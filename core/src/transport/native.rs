//! The AWS SDK transport (stub; being written).
