//! One owner per (Twilio account, number): which object may act on a number at Twilio.
//!
//! Objects claim a number in an account: from the watch when their status names the account
//! (they registered or adopted the number, or sent a create for it), and from their reconcile
//! once their credentials name the account. A claim that *holds* (status records the
//! account) beats one that does not, whatever their ages: the object that registered or adopted
//! a number keeps it. Among holders (pairs left behind by versions before this index), and
//! among claimants when nobody holds the number yet, the oldest object wins: creation time,
//! then UID, so every replica and every restart picks the same one.
//!
//! A claimant becomes a holder only through [`Numbers::commit`], which checks ownership and
//! marks the hold in one step under the state's lock: of two objects racing to register or
//! adopt one number, exactly one gets through.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use super::SenderKey;
use crate::twilio::sender_id_for;

/// One object's claim on a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    pub key: SenderKey,
    pub uid: String,
    /// The object's creation time (`None` sorts last: an object without one is not older).
    pub created: Option<Timestamp>,
    /// Its status records the account: it registered or adopted the number, or sent a create.
    pub holds: bool,
}

impl Claimant {
    /// Older first: creation time, then UID.
    fn age_order(&self) -> (bool, Option<Timestamp>, &str) {
        (self.created.is_none(), self.created, &self.uid)
    }

    fn is(&self, key: &SenderKey, uid: &str) -> bool {
        &self.key == key && self.uid == uid
    }
}

/// Who may act on a number, as one claimant sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    Mine,
    /// Another object owns it; `demoted`: this object held it too and no longer does (its
    /// status must let go of the SID).
    Other {
        owner: SenderKey,
        demoted: bool,
    },
}

/// (account, number) as the index keys it: the number in one form whatever way it was written.
/// Shared: the claims and the claimant's record hold one copy ([`kept_key`]).
pub type NumberKey = Arc<(String, String)>;

pub fn number_key(account: &str, phone: &str) -> NumberKey {
    Arc::new((
        account.to_string(),
        sender_id_for(phone).to_ascii_lowercase(),
    ))
}

/// `number`, or the equal key a record already holds: claims repeat at every reconcile and
/// watch event, and each fresh key would be one more copy kept.
pub fn kept_key(held: Option<&NumberKey>, number: NumberKey) -> NumberKey {
    match held {
        Some(held) if *held == number => held.clone(),
        _ => number,
    }
}

/// Every claimed number of every watched namespace.
#[derive(Debug, Default)]
pub struct Numbers {
    claims: HashMap<NumberKey, Vec<Claimant>>,
}

impl Numbers {
    /// Records `claimant`'s claim on `number` (replacing an earlier claim of the same object
    /// on it) and says who owns the number now. A claimant told it is not the owner no longer
    /// holds it.
    pub fn claim(&mut self, number: &NumberKey, mut claimant: Claimant) -> Ownership {
        let claims = self.claims.entry(number.clone()).or_default();
        match claims
            .iter_mut()
            .find(|c| c.is(&claimant.key, &claimant.uid))
        {
            Some(existing) => {
                claimant.holds |= existing.holds;
                *existing = claimant.clone();
            }
            None => {
                // Nearly every number has one claimant: a first push would make room for
                // four, which came to 5 MiB with 10,000 senders (heaptrack, `make bench`).
                claims.reserve_exact(1);
                claims.push(claimant.clone());
            }
        }
        let owner = owner_in(claims).expect("just claimed").clone();
        if owner.is(&claimant.key, &claimant.uid) {
            return Ownership::Mine;
        }
        let mine = claims
            .iter_mut()
            .find(|c| c.is(&claimant.key, &claimant.uid))
            .expect("just claimed");
        let demoted = std::mem::replace(&mut mine.holds, false);
        Ownership::Other {
            owner: owner.key,
            demoted,
        }
    }

    /// The object registers or adopts `number` now, if it is still the owner: it then holds
    /// it. Otherwise, the owner.
    pub fn commit(
        &mut self,
        number: &NumberKey,
        key: &SenderKey,
        uid: &str,
    ) -> Result<(), SenderKey> {
        let Some(claims) = self.claims.get_mut(number) else {
            return Err(key.clone());
        };
        let owner = owner_in(claims).map(|o| (o.key.clone(), o.uid.clone()));
        match owner {
            Some((owner, owner_uid)) if &owner == key && owner_uid == uid => {
                if let Some(mine) = claims.iter_mut().find(|c| c.is(key, uid)) {
                    mine.holds = true;
                }
                Ok(())
            }
            Some((owner, _)) => Err(owner),
            None => Err(key.clone()),
        }
    }

    /// Whether the object owns `number`.
    pub fn owns(&self, number: &NumberKey, key: &SenderKey, uid: &str) -> bool {
        self.claims
            .get(number)
            .and_then(|claims| owner_in(claims))
            .is_some_and(|owner| owner.is(key, uid))
    }

    /// The object's claim on `number` goes (the object went, or claims another number).
    /// Returns the new owner if ownership passed on, to wake it.
    pub fn release(&mut self, number: &NumberKey, key: &SenderKey, uid: &str) -> Option<SenderKey> {
        let claims = self.claims.get_mut(number)?;
        let was_owner = owner_in(claims).is_some_and(|o| o.is(key, uid));
        claims.retain(|c| !c.is(key, uid));
        if claims.is_empty() {
            self.claims.remove(number);
            return None;
        }
        if was_owner {
            owner_in(claims).map(|o| o.key.clone())
        } else {
            None
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.claims.len()
    }
}

/// The owner among `claims`: the oldest holder, else the oldest claimant.
fn owner_in(claims: &[Claimant]) -> Option<&Claimant> {
    claims
        .iter()
        .min_by(|a, b| (!a.holds, a.age_order()).cmp(&(!b.holds, b.age_order())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimant(name: &str, created_s: i64, holds: bool) -> Claimant {
        Claimant {
            key: SenderKey::new(name).within("ns"),
            uid: format!("uid-{name}"),
            created: Some(Timestamp::from_second(created_s).unwrap()),
            holds,
        }
    }

    fn number() -> NumberKey {
        number_key("AC1", "+15550500001")
    }

    fn key(name: &str) -> SenderKey {
        SenderKey::new(name).within("ns")
    }

    #[test]
    fn a_holder_keeps_its_number_against_an_older_claimant() {
        let mut numbers = Numbers::default();
        assert_eq!(
            numbers.claim(&number(), claimant("young", 20, true)),
            Ownership::Mine
        );
        assert_eq!(
            numbers.claim(&number(), claimant("old", 10, false)),
            Ownership::Other {
                owner: key("young"),
                demoted: false
            }
        );
        assert!(numbers.owns(&number(), &key("young"), "uid-young"));
        assert_eq!(
            numbers.commit(&number(), &key("old"), "uid-old"),
            Err(key("young"))
        );
    }

    #[test]
    fn among_claimants_the_oldest_wins_and_only_one_commits() {
        let mut numbers = Numbers::default();
        assert_eq!(
            numbers.claim(&number(), claimant("b", 20, false)),
            Ownership::Mine
        );
        assert_eq!(
            numbers.claim(&number(), claimant("a", 10, false)),
            Ownership::Mine,
            "older, and nobody holds the number yet"
        );
        assert_eq!(numbers.commit(&number(), &key("b"), "uid-b"), Err(key("a")));
        assert_eq!(numbers.commit(&number(), &key("a"), "uid-a"), Ok(()));
        let c = claimant("c", 5, false);
        assert_eq!(
            numbers.claim(&number(), c),
            Ownership::Other {
                owner: key("a"),
                demoted: false
            },
            "an even older claimant comes too late: a holds it now"
        );
    }

    #[test]
    fn equal_creation_times_are_ordered_by_uid() {
        let mut numbers = Numbers::default();
        numbers.claim(&number(), claimant("b", 10, false));
        numbers.claim(&number(), claimant("a", 10, false));
        assert!(numbers.owns(&number(), &key("a"), "uid-a"), "uid-a < uid-b");
    }

    #[test]
    fn of_two_holders_the_younger_is_demoted_once() {
        let mut numbers = Numbers::default();
        numbers.claim(&number(), claimant("young", 20, true));
        numbers.claim(&number(), claimant("old", 10, true));
        assert_eq!(
            numbers.claim(&number(), claimant("young", 20, true)),
            Ownership::Other {
                owner: key("old"),
                demoted: true
            }
        );
        assert_eq!(
            numbers.claim(&number(), claimant("young", 20, false)),
            Ownership::Other {
                owner: key("old"),
                demoted: false
            },
            "it let go"
        );
    }

    #[test]
    fn when_the_owner_goes_the_oldest_claimant_is_woken() {
        let mut numbers = Numbers::default();
        numbers.claim(&number(), claimant("owner", 30, true));
        numbers.claim(&number(), claimant("second", 20, false));
        numbers.claim(&number(), claimant("first", 10, false));
        assert_eq!(
            numbers.release(&number(), &key("second"), "uid-second"),
            None,
            "not the owner"
        );
        assert_eq!(
            numbers.release(&number(), &key("owner"), "uid-owner"),
            Some(key("first"))
        );
        assert!(numbers.owns(&number(), &key("first"), "uid-first"));
        assert_eq!(numbers.release(&number(), &key("first"), "uid-first"), None);
        assert_eq!(numbers.len(), 0, "an unclaimed number is forgotten");
    }

    #[test]
    fn a_recreated_object_of_the_same_name_is_another_claimant() {
        let mut numbers = Numbers::default();
        numbers.claim(&number(), claimant("a", 10, true));
        let mut again = claimant("a", 30, false);
        again.uid = "uid-a-2".into();
        assert_eq!(
            numbers.claim(&number(), again),
            Ownership::Other {
                owner: key("a"),
                demoted: false
            }
        );
        assert!(!numbers.owns(&number(), &key("a"), "uid-a-2"));
    }

    #[test]
    fn numbers_match_in_any_form() {
        assert_eq!(
            number_key("AC1", "+15550500001"),
            number_key("AC1", "15550500001")
        );
        assert_ne!(
            number_key("AC1", "+15550500001"),
            number_key("AC2", "+15550500001")
        );
    }
}
