//! Where a client sends its requests: `endpoint_url="memory://name"` selects the core's
//! in-process table (shared by every client of that name in the process), anything else the AWS
//! SDK transport.
//!
//! The SDK transport is built on first use, not in the constructor, because building it is async
//! (it reads the AWS configuration chain) and constructors are not. It is cached per process: a
//! forked child must not use connections that belong to its parent's runtime, so it builds its
//! own.

use std::sync::{Arc, Mutex, PoisonError};

use dynalease::transport::{Target, TargetOptions, Transport};

#[derive(Debug)]
pub struct Connection {
    endpoint_url: Option<String>,
    region: Option<String>,
    target: Target,
    cached: Mutex<Option<(u32, Arc<dyn Transport>)>>,
}

impl Connection {
    /// Fails on a malformed endpoint or region (see `Target::new`).
    pub fn new(endpoint_url: Option<String>, region: Option<String>) -> dynalease::Result<Connection> {
        let target = Target::new(TargetOptions { endpoint_url: endpoint_url.clone(), region: region.clone(), ..TargetOptions::default() })?;
        Ok(Connection { endpoint_url, region, target, cached: Mutex::new(None) })
    }

    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The transport of this process, built on first use.
    pub async fn transport(&self) -> dynalease::Result<Arc<dyn Transport>> {
        let pid = std::process::id();
        if let Some((owner, transport)) = &*self.cached.lock().unwrap_or_else(PoisonError::into_inner) {
            if *owner == pid {
                return Ok(transport.clone());
            }
        }
        let transport = self.target.connect().await?;
        // Two first calls racing both build one; the first stored wins so clients stay shared.
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cached {
            Some((owner, existing)) if *owner == pid => Ok(existing.clone()),
            _ => {
                *cached = Some((pid, transport.clone()));
                Ok(transport)
            }
        }
    }
}
