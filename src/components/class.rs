//! Tailwind classes the screens share, so a control looks the same
//! everywhere.

/// A text input, select or textarea.
pub const INPUT: &str = "block w-full rounded-md border border-slate-300 px-3 py-2 shadow-sm focus:border-indigo-500 \
                         focus:outline-none focus:ring-2 focus:ring-indigo-500";
/// The main button of a form.
pub const BUTTON: &str = "rounded-md bg-indigo-600 px-3 py-2 text-sm font-semibold text-white hover:bg-indigo-700 \
                          focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2 disabled:opacity-60";
/// A button that takes something away (revoke, suspend, offboard).
pub const DANGER: &str = "rounded-md bg-red-700 px-3 py-2 text-sm font-semibold text-white hover:bg-red-800 \
                          focus:outline-none focus:ring-2 focus:ring-red-500 focus:ring-offset-2 disabled:opacity-60";
pub const LINK: &str = "text-indigo-700 underline";
/// A section of a page.
pub const CARD: &str = "mb-6 rounded-lg border border-slate-200 bg-white p-4";
pub const TH: &str = "px-3 py-2 text-left font-medium";
pub const TD: &str = "px-3 py-2 align-top";
/// A link in the header or one of its menus.
pub const NAV_LINK: &str = "block rounded px-3 py-2 hover:bg-slate-100 aria-[current=page]:font-semibold";
/// A form's full-width submit button.
pub const SUBMIT: &str = "w-full rounded-md bg-indigo-600 px-4 py-2 font-semibold text-white hover:bg-indigo-700 \
                          focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2 disabled:opacity-60";
/// A small button in a table row or list item.
pub const SMALL_BUTTON: &str = "rounded-md border border-slate-300 px-2 py-1 hover:bg-slate-100";
/// A small button that takes something away.
pub const SMALL_DANGER: &str = "rounded-md border border-red-300 px-2 py-1 text-red-800 hover:bg-red-50";
/// The confirmation after a successful action (`form-ok` marks it for tests).
pub const NOTICE_OK: &str =
    "form-ok mb-4 rounded-md border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800";
