//! Callbacks: registered per event kind, run in order on one dispatcher
//! thread per client — never on a runtime worker, never under a lock. A
//! callback that fails or panics is contained, logged, and reported as a
//! `callback_error` event; the client goes on.
//!
//! Callbacks may call back: unsubscribing is exact (no call of a callback
//! starts once [`Registrations::remove`] returns; from another thread it
//! waits for a call in progress, from the dispatcher thread it cannot and
//! need not), and the dispatcher thread never waits for itself (see
//! `HostClient::close`).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock, Weak};
use std::thread::{JoinHandle, ThreadId};

use comfywire_client::{Event, Filter, FilterHandle, panic_message};
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::error::{ErrorCode, HostError};
use crate::model::{HostEvent, HostEventKind};

/// What a binding implements to receive events. `Err` (or a panic) is
/// contained and reported; it never stops the client.
pub trait EventCallback: Send + Sync {
    /// Called on the client's dispatcher thread, in event order.
    fn on_event(&self, event: &HostEvent) -> Result<(), String>;

    /// Called instead of [`EventCallback::on_event`] for the client's own
    /// events (every kind but `callback_error`), with the client's event
    /// and its flat record (made on first request), for bindings that map
    /// the client's types themselves. By default, `on_event(flat.get())`.
    fn on_client_event(&self, event: &Event, flat: &LazyFlat<'_>) -> Result<(), String> {
        let _ = event;
        self.on_event(flat.get())
    }
}

/// How a binding runs its client's dispatcher thread. Python keeps one
/// interpreter thread state for the thread's whole life and takes the GIL
/// once per batch instead of once per call: a thread state made per call
/// maps and unmaps a frame stack each time, which cost more than the calls.
pub trait DispatchContext: Send + Sync {
    /// Runs the dispatcher's whole loop; `run` returns when the client
    /// closes.
    fn run_thread(&self, run: &mut (dyn FnMut() + Send)) {
        run();
    }

    /// Runs the callback calls of one batch of events, in order.
    fn run_batch(&self, run: &mut (dyn FnMut() + Send)) {
        run();
    }
}

/// The context of bindings that need none.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainContext;

impl DispatchContext for PlainContext {}

struct Registration {
    filter: Filter,
    prompt_id: Option<String>,
    callback_errors: bool,
    callback: Arc<dyn EventCallback>,
}

/// Which events a registration wants, parsed once from kind names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interest {
    filter: Filter,
    prompt_id: Option<String>,
    callback_errors: bool,
}

/// Splits a comma-separated list of kind names (`"progress, finished"`),
/// the form the C ABI takes, for [`Interest::parse`]: blank items are
/// skipped, so a blank list means every kind.
pub fn kind_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Interest {
    /// Parses kind names (every kind when `kinds` is `None` or empty),
    /// optionally for one prompt; an unknown name is an
    /// `InvalidArgument` error naming it.
    pub fn parse(
        kinds: Option<&[String]>,
        prompt_id: Option<String>,
    ) -> Result<Interest, HostError> {
        let (filter, callback_errors) = match kinds {
            None | Some([]) => (Filter::all(), true),
            Some(names) => {
                let mut client_kinds = Vec::with_capacity(names.len());
                let mut callback_errors = false;
                for name in names {
                    match HostEventKind::from_name(name.trim()) {
                        Some(HostEventKind::Client(kind)) => client_kinds.push(kind),
                        Some(HostEventKind::CallbackError) => callback_errors = true,
                        None => {
                            return Err(HostError::new(
                                ErrorCode::InvalidArgument,
                                format!("unknown event kind `{name}`"),
                            ));
                        }
                    }
                }
                (Filter::kinds(&client_kinds), callback_errors)
            }
        };
        let filter = match &prompt_id {
            Some(p) => filter.prompt(p.clone()),
            None => filter,
        };
        Ok(Interest {
            filter,
            prompt_id,
            callback_errors,
        })
    }

    /// The client filter of the client events wanted.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
}

/// The registrations of one client, and which one the dispatcher is
/// calling now.
#[derive(Default)]
struct Table {
    callbacks: BTreeMap<u64, Registration>,
    /// Set while the dispatcher calls this registration's callback, so that
    /// removing it can wait for the call to end.
    calling: Option<u64>,
}

/// The callbacks of one client. The forwarder's subscription always
/// carries the union of their filters, so events nobody wants are never
/// queued for the dispatcher.
pub(crate) struct Registrations {
    table: Mutex<Table>,
    /// Signalled when a call ends.
    call_ended: Condvar,
    /// The client's dispatcher thread, once started.
    dispatcher: OnceLock<ThreadId>,
    next_id: AtomicU64,
    pub(crate) failures: AtomicU64,
    forward: Mutex<Option<FilterHandle>>,
}

impl Registrations {
    pub(crate) fn new() -> Arc<Registrations> {
        Arc::new(Registrations {
            table: Mutex::new(Table::default()),
            call_ended: Condvar::new(),
            dispatcher: OnceLock::new(),
            next_id: AtomicU64::new(1),
            failures: AtomicU64::new(0),
            forward: Mutex::new(None),
        })
    }

    /// True on this client's dispatcher thread (inside one of its
    /// callbacks), where nothing may wait for the dispatcher.
    pub(crate) fn on_dispatcher(&self) -> bool {
        self.dispatcher.get() == Some(&std::thread::current().id())
    }

    /// Where the union of the filters goes from now on.
    pub(crate) fn forward_to(&self, handle: FilterHandle) {
        let table = self.table.lock();
        handle.set(union(&table.callbacks));
        *self.forward.lock() = Some(handle);
    }

    pub(crate) fn len(&self) -> usize {
        self.table.lock().callbacks.len()
    }

    pub(crate) fn add(
        self: &Arc<Self>,
        interest: Interest,
        callback: Arc<dyn EventCallback>,
    ) -> CallbackHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut table = self.table.lock();
        table.callbacks.insert(
            id,
            Registration {
                filter: interest.filter,
                prompt_id: interest.prompt_id,
                callback_errors: interest.callback_errors,
                callback,
            },
        );
        self.refilter(&table.callbacks);
        CallbackHandle {
            id,
            registry: Arc::downgrade(self),
            active: AtomicBool::new(true),
        }
    }

    // Under the table's lock, so that filters are set in the order the
    // registrations changed.
    fn refilter(&self, callbacks: &BTreeMap<u64, Registration>) {
        if let Some(handle) = &*self.forward.lock() {
            handle.set(union(callbacks));
        }
    }

    /// Removes a registration: no call of its callback starts after this
    /// returns. A call already running on the dispatcher is waited for,
    /// unless this is the dispatcher thread (the callback removing itself,
    /// or another one), where that call is the caller's own and ends after
    /// it. The callback itself is dropped outside the lock (its drop may
    /// run foreign code, e.g. a C free function): here, or on the
    /// dispatcher when its running call returns.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let removed = {
            let mut table = self.table.lock();
            let removed = table.callbacks.remove(&id);
            if removed.is_some() {
                self.refilter(&table.callbacks);
                if !self.on_dispatcher() {
                    while table.calling == Some(id) {
                        self.call_ended.wait(&mut table);
                    }
                }
            }
            removed
        };
        removed.is_some()
    }

    /// The registrations that want a client event.
    pub(crate) fn matching(&self, event: &Event) -> Vec<u64> {
        self.table
            .lock()
            .callbacks
            .iter()
            .filter(|(_, r)| r.filter.wants(event))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The registrations that want a callback failure report.
    fn matching_report(&self, prompt_id: Option<&str>) -> Vec<u64> {
        self.table
            .lock()
            .callbacks
            .iter()
            .filter(|(_, r)| {
                r.callback_errors && r.prompt_id.as_deref().is_none_or(|p| prompt_id == Some(p))
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The callback of a registration still registered, marked as being
    /// called until [`Registrations::end_call`]; in one lock with the
    /// lookup, so that a removal either sees the call or prevents it.
    fn begin_call(&self, id: u64) -> Option<Arc<dyn EventCallback>> {
        let mut table = self.table.lock();
        let callback = table.callbacks.get(&id)?.callback.clone();
        table.calling = Some(id);
        Some(callback)
    }

    fn end_call(&self) {
        self.table.lock().calling = None;
        self.call_ended.notify_all();
    }

    /// Removes every registration (no new call starts; one running now
    /// ends on its own) and hands the callbacks back, for the caller to
    /// drop outside its locks.
    pub(crate) fn take_all(&self) -> Vec<Arc<dyn EventCallback>> {
        let mut table = self.table.lock();
        let all = std::mem::take(&mut table.callbacks);
        self.refilter(&table.callbacks);
        all.into_values().map(|r| r.callback).collect()
    }
}

fn union(callbacks: &BTreeMap<u64, Registration>) -> Filter {
    callbacks
        .values()
        .fold(Filter::none(), |all, r| all.union(&r.filter))
}

/// A registered callback; unregisters on [`CallbackHandle::cancel`] or drop.
#[derive(Debug)]
pub struct CallbackHandle {
    id: u64,
    registry: Weak<Registrations>,
    /// True until the first cancel.
    active: AtomicBool,
}

impl CallbackHandle {
    /// The registration id (what the C ABI hands out).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Unregisters now; true if it was still registered. As
    /// `HostClient::unsubscribe`: no call starts after this returns.
    pub fn cancel(&self) -> bool {
        self.active.swap(false, Ordering::AcqRel)
            && self.registry.upgrade().is_some_and(|r| r.remove(self.id))
    }

    /// True until [`CallbackHandle::cancel`] was called.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Keeps the callback registered after this handle is dropped (for
    /// bindings that unregister by id).
    pub fn detach(mut self) -> u64 {
        self.registry = Weak::new();
        self.id
    }
}

impl Drop for CallbackHandle {
    fn drop(&mut self) {
        if let Some(r) = self.registry.upgrade() {
            r.remove(self.id);
        }
    }
}

/// A client event's flat record, made when first asked for: bindings that
/// map the client's own types never need it, and for a `finished` event it
/// means serialising the whole outcome.
pub struct LazyFlat<'a> {
    event: &'a Event,
    flat: std::cell::OnceCell<HostEvent>,
}

impl<'a> LazyFlat<'a> {
    /// The record of `event`, not made yet.
    pub fn new(event: &'a Event) -> LazyFlat<'a> {
        LazyFlat {
            event,
            flat: std::cell::OnceCell::new(),
        }
    }

    /// The flat record (made on the first call).
    pub fn get(&self) -> &HostEvent {
        self.flat.get_or_init(|| HostEvent::from_event(self.event))
    }
}

/// One event of the client on its way to the callbacks that want it.
pub(crate) struct Delivery {
    /// The registrations it matched when it was forwarded.
    pub(crate) ids: Vec<u64>,
    pub(crate) event: Event,
}

/// What a callback is called with.
enum Input<'a> {
    /// A client event.
    Client(&'a Event, &'a LazyFlat<'a>),
    /// A failure report (not a client event).
    Report(&'a HostEvent),
}

pub(crate) enum Job {
    /// Events in order: one job per batch the client delivered, so the
    /// dispatcher wakes (and Python takes the GIL) once per batch.
    Calls(Vec<Delivery>),
    Stop,
}

/// Batches of client events handed to the dispatcher and not yet done.
/// The forwarder waits while [`Backlog::LIMIT`] are pending, so a slow
/// callback makes the client's bounded subscription queue coalesce
/// (progress, previews) instead of the hand-off growing without bound.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    pending: AtomicUsize,
    room: tokio::sync::Notify,
}

impl Backlog {
    /// Batches (of up to 256 events each) in flight at most.
    pub(crate) const LIMIT: usize = 4;

    /// Waits until another batch may be handed over, and counts it.
    pub(crate) async fn reserve(&self) {
        loop {
            let room = self.room.notified();
            if self.pending.load(Ordering::Acquire) < Self::LIMIT {
                self.pending.fetch_add(1, Ordering::AcqRel);
                return;
            }
            room.await;
        }
    }

    /// One batch is done (or was never delivered).
    pub(crate) fn release(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
        self.room.notify_one();
    }

    /// Batches in flight now.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

/// A client's dispatcher thread and the hand-off to it.
pub(crate) struct Dispatcher {
    pub(crate) tx: mpsc::Sender<Job>,
    pub(crate) backlog: Arc<Backlog>,
    thread: Option<JoinHandle<()>>,
    /// Ends (its sender is dropped) once the thread has left its loop and
    /// the binding's context: no callback runs or will run.
    exited: watch::Receiver<()>,
}

impl Dispatcher {
    pub(crate) fn start(
        registry: Arc<Registrations>,
        errors: mpsc::SyncSender<HostEvent>,
        context: Arc<dyn DispatchContext>,
    ) -> std::io::Result<Dispatcher> {
        let (tx, rx) = mpsc::channel::<Job>();
        let backlog = Arc::new(Backlog::default());
        let done = backlog.clone();
        let (exit_tx, exited) = watch::channel(());
        let calls = registry.clone();
        let thread = std::thread::Builder::new()
            .name("comfywire-dispatch".into())
            .spawn(move || {
                let batches = context.clone();
                context.run_thread(&mut move || {
                    while let Ok(Job::Calls(batch)) = rx.recv() {
                        batches.run_batch(&mut || {
                            for d in &batch {
                                let flat = LazyFlat::new(&d.event);
                                for id in &d.ids {
                                    let input = Input::Client(&d.event, &flat);
                                    call(&calls, *id, &input, &errors);
                                }
                            }
                        });
                        done.release();
                    }
                });
                // Also dropped when the context unwinds: a close never
                // waits for a thread that is gone.
                drop(exit_tx);
            })?;
        let _ = registry.dispatcher.set(thread.thread().id());
        Ok(Dispatcher {
            tx,
            backlog,
            thread: Some(thread),
            exited,
        })
    }

    /// Asks the thread to stop once the jobs handed over before are done
    /// (with no registration left, they call nothing).
    pub(crate) fn request_stop(&self) {
        let _ = self.tx.send(Job::Stop);
    }

    /// What ends when the thread has exited.
    pub(crate) fn exited(&self) -> watch::Receiver<()> {
        self.exited.clone()
    }

    /// Joins the thread after it exited (releasing the thread's resources
    /// before the caller goes on); never from the thread itself.
    pub(crate) fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        // Not joined: a dispatcher dropped on its own thread (the last
        // reference released in a callback) must not wait for itself.
        self.request_stop();
    }
}

/// Waits until the sender of `signal` is dropped.
pub(crate) async fn ended(mut signal: watch::Receiver<()>) {
    while signal.changed().await.is_ok() {}
}

/// Calls one callback with one event; a failure is logged and reported.
fn call(
    registry: &Registrations,
    id: u64,
    input: &Input<'_>,
    errors: &mpsc::SyncSender<HostEvent>,
) {
    // Fetched per call, so a callback unregistered by an earlier one is
    // not called with a stale event.
    let Some(callback) = registry.begin_call(id) else {
        return;
    };
    let result = catch_unwind(AssertUnwindSafe(|| match input {
        Input::Client(event, flat) => callback.on_client_event(event, flat),
        Input::Report(report) => callback.on_event(report),
    }));
    // Released before the call counts as ended: a removal waiting for it
    // then holds the last reference, so the callback is dropped (a C free
    // function run) before that removal returns.
    drop(callback);
    registry.end_call();
    let failure = match result {
        Ok(Ok(())) => return,
        Ok(Err(message)) => message,
        Err(panic) => {
            format!("callback panicked: {}", panic_message(panic.as_ref()))
        }
    };
    registry.failures.fetch_add(1, Ordering::Relaxed);
    let (kind, prompt_id) = match input {
        Input::Client(event, _) => (HostEventKind::Client(event.kind()), event.prompt_id()),
        Input::Report(report) => (report.kind, report.prompt_id.as_deref()),
    };
    tracing::warn!(target: "comfywire::callback", kind = kind.name(), error = %failure, "a callback failed; the client goes on");
    if kind == HostEventKind::CallbackError {
        // A failing error handler is only logged, or errors would loop.
        return;
    }
    let report = HostEvent::callback_error(prompt_id.map(str::to_owned), kind, id, failure);
    // Bounded: an unread pull queue drops the newest reports, never blocks.
    let _ = errors.try_send(report.clone());
    for other in registry.matching_report(report.prompt_id.as_deref()) {
        if other != id {
            call(registry, other, &Input::Report(&report), errors);
        }
    }
}

#[cfg(test)]
mod backlog_tests {
    use super::*;

    #[test]
    fn kind_lists_skip_blank_items() {
        assert!(kind_list(" , ").is_empty());
        assert_eq!(kind_list("progress, finished"), ["progress", "finished"]);
    }

    #[test]
    fn the_forwarder_waits_while_the_dispatcher_is_behind() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let backlog = Arc::new(Backlog::default());
        rt.block_on(async {
            for _ in 0..Backlog::LIMIT {
                backlog.reserve().await;
            }
            assert_eq!(backlog.pending(), Backlog::LIMIT);
            let waiting = backlog.clone();
            let next = tokio::spawn(async move { waiting.reserve().await });
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert!(!next.is_finished(), "a fifth batch went out");
            // The dispatcher finishes one batch, on its own thread.
            let done = backlog.clone();
            std::thread::spawn(move || done.release());
            tokio::time::timeout(std::time::Duration::from_secs(5), next)
                .await
                .unwrap_or_else(|_| panic!("never woken"))
                .unwrap_or_else(|e| panic!("task: {e}"));
            assert_eq!(backlog.pending(), Backlog::LIMIT);
        });
    }
}
