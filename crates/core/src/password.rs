//! The system services backends reach through the SDK: password generation from the policies
//! of `sys/policies/password` (`coffer_system::password`), the caller's identity for templates.

use crate::Result;
pub use coffer_system::password::PasswordPolicy;

/// The system services backends reach through the SDK (password generation, the caller's
/// identity for templates).
pub struct Services {
    pub barrier: std::sync::Arc<coffer_barrier::Barrier>,
    /// The unsealed state whose identity store answers `identity_facts` (set at each unseal).
    pub(crate) active: std::sync::RwLock<std::sync::Weak<crate::Active>>,
}

impl Services {
    pub(crate) fn new(barrier: std::sync::Arc<coffer_barrier::Barrier>) -> Self {
        Services { barrier, active: std::sync::RwLock::new(std::sync::Weak::new()) }
    }

    pub(crate) fn set_active(&self, active: &std::sync::Arc<crate::Active>) {
        *self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::downgrade(active);
    }
}

#[async_trait::async_trait]
impl coffer_sdk::SystemServices for Services {
    /// Generates a password from a named policy (or the default policy for "").
    async fn generate_password(&self, name: &str) -> Result<String> {
        coffer_system::password::generate(&self.barrier, name).await
    }

    async fn identity_facts(&self, entity_id: &str) -> Result<Option<coffer_sdk::identity_template::IdentityFacts>> {
        let active = self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner).upgrade();
        match active {
            Some(a) => Ok(a.identity.facts_for(entity_id).await),
            None => Ok(None),
        }
    }
}
