/*!
Sending: the Wolkvox client (`api`), the worker pool that paces and retries
requests per token (`dispatch`), the daily-quota pre-check (`quota`), the
proxy variables checked before any request (`proxy`) and the contact hours every
attempt is held to (`window`).
*/

pub(crate) mod api;
pub(crate) mod dispatch;
pub(crate) mod proxy;
pub(crate) mod quota;
pub(crate) mod templates;
pub(crate) mod token;
pub(crate) mod window;
