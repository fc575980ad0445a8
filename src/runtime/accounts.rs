//! The registry of Twilio accounts every controller shares: one request budget per account,
//! whichever controller's client spends it, so that adding a kind never multiplies the request
//! rate an account sees; one Error Log pass per account, whichever controller's object asks;
//! and the client built from each credentials Secret's version, whichever controller read it.
//! Each lives while some controller holds it: the registry keeps only weak handles, so an
//! account (or Secret) nothing uses any more is forgotten without a sweep.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::alert_log::AlertLog;
use super::clients::{ClientSlot, SecretKey};
use crate::twilio::{BudgetConfig, RequestBudget, WeakBudget};

#[derive(Debug)]
pub struct AccountRegistry {
    config: BudgetConfig,
    budgets: Mutex<HashMap<String, WeakBudget>>,
    alert_logs: Held<String, AlertLog>,
    clients: Held<SecretKey, ClientSlot>,
}

/// Values shared while something holds them: weak handles by key, made on first use, and the
/// dead ones swept whenever a new one is made (so nothing grows without a sweep of its own).
#[derive(Debug)]
struct Held<K, V> {
    map: Mutex<HashMap<K, Weak<V>>>,
}

impl<K: Eq + Hash, V: Default> Held<K, V> {
    fn new() -> Self {
        Held {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Weak<V>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key` some holder keeps alive, if any.
    fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().get(key).and_then(Weak::upgrade)
    }

    /// The value of `key`, made (default) if nothing holds one.
    fn get_or_make<Q>(&self, key: &Q) -> Arc<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut map = self.lock();
        if let Some(value) = map.get(key).and_then(Weak::upgrade) {
            return value;
        }
        map.retain(|_, value| value.strong_count() > 0);
        let value = Arc::new(V::default());
        map.insert(key.to_owned(), Arc::downgrade(&value));
        value
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Default for AccountRegistry {
    fn default() -> Self {
        AccountRegistry::new(BudgetConfig::default())
    }
}

impl AccountRegistry {
    /// Each account's bucket sized by `config`.
    pub fn new(config: BudgetConfig) -> AccountRegistry {
        AccountRegistry {
            config,
            budgets: Mutex::new(HashMap::new()),
            alert_logs: Held::new(),
            clients: Held::new(),
        }
    }

    /// The request budget every client of `account` shares, of whatever controller.
    pub fn budget(&self, account: &str) -> RequestBudget {
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(budget) = budgets.get(account).and_then(WeakBudget::upgrade) {
            return budget;
        }
        // A new account, or one whose clients all went: forget every such one on the way.
        budgets.retain(|_, budget| budget.is_alive());
        let budget = RequestBudget::new(self.config);
        budgets.insert(account.to_string(), budget.downgrade());
        budget
    }

    /// `scope`'s Error Log as read so far, shared by every controller (a verified account, or
    /// the scope of credentials Twilio did not confirm).
    pub fn alert_log(&self, scope: &str) -> Arc<AlertLog> {
        self.alert_logs.get_or_make(scope)
    }

    /// The clients of Secret `key`, made on first use; a controller holds it while it reads the
    /// Secret.
    pub fn client_slot(&self, key: &SecretKey) -> Arc<ClientSlot> {
        self.clients.get_or_make(key)
    }

    /// The clients of Secret `key`, if some controller holds them.
    pub fn existing_client_slot(&self, key: &SecretKey) -> Option<Arc<ClientSlot>> {
        self.clients.get(key)
    }

    /// Accounts some client still holds a budget of.
    pub fn accounts_in_use(&self) -> usize {
        let budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        budgets.values().filter(|budget| budget.is_alive()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_budget_per_account_for_every_holder_and_none_once_nobody_holds_it() {
        let registry = AccountRegistry::new(BudgetConfig::default());
        let senders = registry.budget("AC1");
        let templates = registry.budget("AC1");
        assert!(senders.is_shared(), "both controllers hold one bucket");
        let other = registry.budget("AC2");
        assert_eq!(registry.accounts_in_use(), 2);
        drop((senders, templates));
        assert_eq!(registry.accounts_in_use(), 1, "AC1 is held by nobody");
        drop(other);
        assert_eq!(registry.accounts_in_use(), 0);
        let _again = registry.budget("AC3");
        assert_eq!(
            registry.budgets.lock().unwrap().len(),
            1,
            "the dead entries were swept on the way"
        );
    }

    #[test]
    fn one_error_log_per_account_while_some_controller_holds_it() {
        let registry = AccountRegistry::new(BudgetConfig::default());
        let senders = registry.alert_log("AC1");
        assert!(Arc::ptr_eq(&senders, &registry.alert_log("AC1")));
        assert!(!Arc::ptr_eq(&senders, &registry.alert_log("AC2")));
        drop(senders);
        let _other = registry.alert_log("AC3");
        assert_eq!(
            registry.alert_logs.len(),
            1,
            "nobody held AC1's or AC2's: swept on the way"
        );
    }

    #[test]
    fn one_client_slot_per_secret_while_some_controller_reads_it() {
        let registry = AccountRegistry::default();
        let key = ("team".to_string(), "twilio".to_string());
        assert!(registry.existing_client_slot(&key).is_none());
        let senders = registry.client_slot(&key);
        let templates = registry
            .existing_client_slot(&key)
            .expect("the senders' slot");
        assert!(Arc::ptr_eq(&senders, &templates));
        drop((senders, templates));
        assert!(
            registry.existing_client_slot(&key).is_none(),
            "nobody reads the Secret any more"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn two_controllers_of_one_account_spend_one_bucket() {
        let registry = AccountRegistry::new(BudgetConfig::default());
        let senders = registry.budget("AC1");
        let templates = registry.budget("AC1");
        let burst = BudgetConfig::default().burst.get();
        for _ in 0..burst {
            assert!(senders.try_acquire());
        }
        assert!(
            !templates.try_acquire(),
            "the other controller's requests came out of the same bucket"
        );
    }
}
