/*!
Sending: the Wolkvox client (`api`), the worker pool that paces and retries
requests per token (`dispatch`), the daily-quota pre-check (`quota`) and the
contact hours every attempt is held to (`window`).
*/

pub mod api;
pub mod dispatch;
pub mod quota;
pub mod token;
pub mod window;
