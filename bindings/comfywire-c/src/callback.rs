//! Callbacks as C knows them: a function, a `void *user_data`, and a
//! function that frees the user data once the subscription is gone.
//!
//! The host owns the subscription list and the dispatcher thread; this
//! module only adapts the C triple to its `EventCallback`. The free
//! function runs in `Drop`, which the host reaches exactly once per
//! subscription: on unsubscribe, on client close/free, or (when the
//! subscription was removed while its callback ran) after that call returns.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use comfywire_host::event::Event as ClientEvent;
use comfywire_host::{Delivered, ErrorCode, EventCallback, HostError, HostEvent, LazyFlat};

use crate::client::{Client, client_arg};
use crate::event::Event;
use crate::panic::ffi_status;
use crate::status::Status;
use crate::strings::{Out, opt_str_arg};

/// An event callback: gets the subscription's `user_data` and an event
/// that is only lent for the duration of the call (copy it with
/// comfywire_event_clone() to keep it). Runs on the client's dispatcher
/// thread. Must not unwind.
pub type EventFn = Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const Event)>;

/// Frees a subscription's `user_data`; called exactly once.
pub type FreeFn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

struct CCallback {
    call: unsafe extern "C" fn(*mut c_void, *const Event),
    user_data: *mut c_void,
    free: FreeFn,
}

// SAFETY: the header's contract makes the caller responsible for
// `user_data` being usable from the dispatcher thread and from whichever
// thread ends the subscription; the function pointers themselves are plain
// code addresses.
unsafe impl Send for CCallback {}
// SAFETY: as above; the host calls `on_event` from one dispatcher thread at
// a time, and `Drop` has exclusive access.
unsafe impl Sync for CCallback {}

impl CCallback {
    fn deliver(&self, event: Event) {
        // SAFETY: `call` and `user_data` were supplied together by the C
        // caller for exactly this use; the event outlives the call.
        unsafe { (self.call)(self.user_data, &event) };
    }
}

impl EventCallback for CCallback {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        self.deliver(Event::new(Delivered::Report(event.clone()), event.clone()));
        Ok(())
    }

    fn on_client_event(&self, event: &ClientEvent, flat: &LazyFlat<'_>) -> Result<(), String> {
        self.deliver(Event::new(
            Delivered::Client(event.clone()),
            flat.get().clone(),
        ));
        Ok(())
    }
}

impl Drop for CCallback {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: the C caller supplied `free` for this `user_data`;
            // Drop runs once, so it is freed once.
            unsafe { free(self.user_data) };
        }
    }
}

fn parse_kinds(kinds: Option<&str>) -> Option<Vec<String>> {
    let list: Vec<String> = kinds?
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    (!list.is_empty()).then_some(list)
}

/// Registers a callback for the event kinds in `kinds`, a comma-separated
/// list such as `"progress,finished"` (NULL or `""` for every kind), and
/// for one prompt when `prompt_id` is not NULL. Sets `*out_id` to the
/// subscription id for comfywire_unsubscribe().
///
/// Ownership: the library keeps `user_data` and calls
/// `free_user_data(user_data)` (when not NULL) exactly once: at
/// comfywire_unsubscribe(), comfywire_client_close() or
/// comfywire_client_free(). When registration fails (unknown kind, NULL
/// callback) it is called before this function returns, so the caller
/// never has to free `user_data` itself after handing it over.
///
/// # Safety
/// `client` is NULL or a live client; strings are NULL or NUL-terminated;
/// `out_id` is NULL or writable; `callback` and `free_user_data` are valid
/// functions for `user_data` from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_subscribe(
    client: *const Client,
    kinds: *const c_char,
    prompt_id: *const c_char,
    callback: EventFn,
    user_data: *mut c_void,
    free_user_data: FreeFn,
    out_id: *mut u64,
) -> Status {
    // Built first so every failure path below releases `user_data` by
    // dropping it, exactly like a successful subscription would later.
    let owned = callback.map(|call| CCallback {
        call,
        user_data,
        free: free_user_data,
    });
    ffi_status(move || {
        let Some(owned) = owned else {
            if let Some(free) = free_user_data {
                // SAFETY: the caller supplied `free` for this `user_data`,
                // and no CCallback owns it, so this is its only release.
                unsafe { free(user_data) };
            }
            return Err(HostError::new(
                ErrorCode::InvalidArgument,
                "callback is NULL",
            ));
        };
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { Out::new(out_id, 0, "out_id") }?;
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        // SAFETY: forwarded from this function's contract.
        let kinds = parse_kinds(unsafe { opt_str_arg(kinds, "kinds") }?);
        // SAFETY: forwarded from this function's contract.
        let prompt_id = unsafe { opt_str_arg(prompt_id, "prompt_id") }?.map(str::to_owned);
        let handle = client
            .host
            .subscribe(kinds.as_deref(), prompt_id, Arc::new(owned))?;
        out.set(handle.detach());
        Ok(())
    })
}

/// Removes a subscription; its `free_user_data` runs before this returns,
/// unless its callback is running right now on the dispatcher thread, in
/// which case it runs there when that call returns. No call of the callback
/// starts after this returns. COMFYWIRE_INVALID_ARGUMENT for an unknown
/// (or already removed) id.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_unsubscribe(
    client: *const Client,
    subscription_id: u64,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { client_arg(client) }?;
        if client.host.unsubscribe(subscription_id) {
            Ok(())
        } else {
            Err(HostError::new(
                ErrorCode::InvalidArgument,
                format!("no subscription {subscription_id}"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_a_comma_list() {
        assert_eq!(parse_kinds(None), None);
        assert_eq!(parse_kinds(Some(" , ")), None);
        assert_eq!(
            parse_kinds(Some("progress, finished")),
            Some(vec!["progress".to_owned(), "finished".to_owned()])
        );
    }
}
