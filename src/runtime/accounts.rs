//! The registry of Twilio accounts every controller shares: one request budget per account,
//! whichever controller's client spends it, so that adding a kind never multiplies the request
//! rate an account sees; one Error Log pass per account, whichever controller's object asks;
//! and the client built from each credentials Secret's version, whichever controller read it.
//! Each lives while some controller holds it: the registry keeps only weak handles, so an
//! account (or Secret) nothing uses any more is forgotten without a sweep.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::alert_log::AlertLog;
use super::clients::{ClientSlot, SecretKey};
use crate::twilio::{BudgetConfig, RequestBudget, WeakBudget};

#[derive(Debug)]
pub struct AccountRegistry {
    config: BudgetConfig,
    budgets: Mutex<HashMap<String, WeakBudget>>,
    alert_logs: Mutex<HashMap<String, Weak<AlertLog>>>,
    clients: Mutex<HashMap<SecretKey, Weak<ClientSlot>>>,
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
            alert_logs: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
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
        let mut logs = self
            .alert_logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(log) = logs.get(scope).and_then(Weak::upgrade) {
            return log;
        }
        logs.retain(|_, log| log.strong_count() > 0);
        let log = Arc::new(AlertLog::default());
        logs.insert(scope.to_string(), Arc::downgrade(&log));
        log
    }

    /// The clients of Secret `key`, made on first use; a controller holds it while it reads the
    /// Secret.
    pub fn client_slot(&self, key: &SecretKey) -> Arc<ClientSlot> {
        let mut slots = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(key).and_then(Weak::upgrade) {
            return slot;
        }
        slots.retain(|_, slot| slot.strong_count() > 0);
        let slot = Arc::new(ClientSlot::default());
        slots.insert(key.clone(), Arc::downgrade(&slot));
        slot
    }

    /// The clients of Secret `key`, if some controller holds them.
    pub fn existing_client_slot(&self, key: &SecretKey) -> Option<Arc<ClientSlot>> {
        let slots = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        slots.get(key).and_then(Weak::upgrade)
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
            registry.alert_logs.lock().unwrap().len(),
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
