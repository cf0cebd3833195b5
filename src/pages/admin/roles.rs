//! Roles: the catalogue, custom roles, and approval policies.

use super::role_changes::RoleChanges;
use crate::api::*;
use crate::components::{class::*, Badge, Done, Field, FormError, LoadError, PasskeyStepUp, StepUpCode};
use leptos::prelude::*;

// ---------------------------------------------------------------- roles

/// How custom roles are changed.
const CHANGING_ROLES: &str =
    "Use an existing custom role's identifier to change it; the change applies to everyone who holds \
                              it. While two or more administrators exist, a change that adds critical or administrator \
                              permissions waits for a second one. Built-in roles cannot be changed.";

/// After saving a change that waits for a second administrator.
const PROPOSED: &str = "Proposed: the change adds critical or administrator permissions, so it waits for a second \
                        administrator (above).";

/// Who approves, when no one is named.
const POLICY_RULES: &str = "Without named approvers, anyone holding requests:approve may approve. The requester never \
                            counts, and auditors never approve. Changes apply to requests made afterwards and need your \
                            authenticator code when your last one is more than 5 minutes old.";

#[component]
pub fn RolesPage() -> impl IntoView {
    let save = ServerAction::<SaveRole>::new();
    let delete = ServerAction::<DeleteRole>::new();
    let data = Resource::new(move || save.version().get() + delete.version().get(), |_| catalogue());
    view! {
        <h1 class="mb-4 text-2xl font-semibold">"Roles"</h1>
        <RoleChanges saved=save.version() />
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(c) => {
                        let perms = c.permissions.clone();
                        view! {
                            <FormError action=delete />
                            <div class="mb-6 overflow-x-auto rounded-lg border border-slate-200 bg-white">
                                <table id="roles" class="min-w-full divide-y divide-slate-200 text-sm">
                                    <caption class="sr-only">"Roles and their permissions"</caption>
                                    <thead class="bg-slate-50">
                                        <tr>
                                            <th scope="col" class=TH>
                                                "Role"
                                            </th>
                                            <th scope="col" class=TH>
                                                "Permissions"
                                            </th>
                                            <th scope="col" class=TH>
                                                "Longest grant"
                                            </th>
                                            <th scope="col" class=TH>
                                                "Holders"
                                            </th>
                                            <th scope="col" class=TH>
                                                "Access reviews by"
                                            </th>
                                            <th scope="col" class=TH>
                                                <span class="sr-only">"Actions"</span>
                                            </th>
                                        </tr>
                                    </thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {c
                                            .roles
                                            .into_iter()
                                            .map(|r| {
                                                view! {
                                                    <tr data-role=r.key.clone()>
                                                        <td class=TD>
                                                            <span class="font-medium">{r.name.clone()}</span>
                                                            " "
                                                            <span class="font-mono text-xs text-slate-500">
                                                                {r.key.clone()}
                                                            </span>
                                                            {r
                                                                .builtin
                                                                .then(|| {
                                                                    view! {
                                                                        " "
                                                                        <Badge text="built-in".to_string() />
                                                                    }
                                                                })}
                                                            {r
                                                                .requestable
                                                                .then(|| {
                                                                    view! {
                                                                        " "
                                                                        <Badge text="requestable".to_string() />
                                                                    }
                                                                })}
                                                            <span class="block text-xs text-slate-500">
                                                                {r.description.clone()}
                                                            </span>
                                                        </td>
                                                        <td class=TD>
                                                            <span class="font-mono text-xs">
                                                                {r.permissions.join(", ")}
                                                            </span>
                                                        </td>
                                                        <td class=TD>
                                                            {r
                                                                .max_duration
                                                                .clone()
                                                                .unwrap_or_else(|| "standing".into())}
                                                        </td>
                                                        <td class=TD>{r.holders}</td>
                                                        <td class=TD>
                                                            {if r.reviewers.is_empty() {
                                                                "administrators".to_owned()
                                                            } else {
                                                                r.reviewers.join(", ")
                                                            }}
                                                        </td>
                                                        <td class=TD>
                                                            {
                                                                let key = r.key.clone();
                                                                (!r.builtin)
                                                                    .then(move || {
                                                                        view! {
                                                                            <ActionForm action=delete>
                                                                                <input type="hidden" name="key" value=key.clone() />
                                                                                <button
                                                                                    type="submit"
                                                                                    class=SMALL_DANGER
                                                                                >
                                                                                    "Delete"
                                                                                </button>
                                                                            </ActionForm>
                                                                        }
                                                                    })
                                                            }
                                                        </td>
                                                    </tr>
                                                }
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <section class=CARD aria-labelledby="role-h">
                                <h2 id="role-h" class="mb-2 font-semibold">
                                    "Create or change a custom role"
                                </h2>
                                <p class="mb-4 text-sm text-slate-600">
                                    {CHANGING_ROLES}
                                </p>
                                {move || {
                                    save.value()
                                        .get()
                                        .and_then(|r| r.ok())
                                        .map(|waits| {
                                            view! {
                                                <p role="status" class=NOTICE_OK>
                                                    {if waits { PROPOSED } else { "Role saved." }}
                                                </p>
                                            }
                                        })
                                }}
                                <FormError action=save />
                                <ActionForm action=save>
                                    <div class="grid gap-x-4 sm:grid-cols-2">
                                        <Field
                                            label="Identifier"
                                            name="key"
                                            autocomplete="off"
                                            hint="Lower-case letters, digits and dashes, e.g. billing-support."
                                        />
                                        <Field label="Name" name="name" autocomplete="off" />
                                    </div>
                                    <div class="mb-4">
                                        <label for="description" class="mb-1 block text-sm font-medium text-slate-700">
                                            "Description"
                                        </label>
                                        <input id="description" name="description" class=INPUT />
                                    </div>
                                    <fieldset class="mb-4">
                                        <legend class="mb-1 text-sm font-medium text-slate-700">"Permissions"</legend>
                                        <div class="grid sm:grid-cols-2">
                                            {perms
                                                .into_iter()
                                                .map(|p| {
                                                    let id = format!("perm-{}", p.id.replace(':', "-"));
                                                    view! {
                                                        <div class="flex items-start gap-2 py-1">
                                                            <input
                                                                type="checkbox"
                                                                id=id.clone()
                                                                name="permissions[]"
                                                                value=p.id.clone()
                                                                class="mt-1"
                                                            />
                                                            <label for=id class="text-sm">
                                                                <span class="font-mono">{p.id.clone()}</span>
                                                                " "
                                                                <Badge text=p.sensitivity.clone() />
                                                                <span class="block text-xs text-slate-500">
                                                                    {p.description.clone()}
                                                                </span>
                                                            </label>
                                                        </div>
                                                    }
                                                })
                                                .collect_view()}
                                        </div>
                                    </fieldset>
                                    <div class="grid gap-x-4 sm:grid-cols-2">
                                        <div class="mb-4">
                                            <label
                                                for="max_duration"
                                                class="mb-1 block text-sm font-medium text-slate-700"
                                            >
                                                "Longest grant"
                                            </label>
                                            <input
                                                id="max_duration"
                                                name="max_duration"
                                                class=INPUT
                                                placeholder="e.g. 8h; empty for standing"
                                            />
                                        </div>
                                        <div class="mb-4 flex items-center gap-2 pt-6">
                                            <input type="checkbox" id="requestable" name="requestable" value="on" />
                                            <label for="requestable" class="text-sm">
                                                "Employees may request it (needs a longest grant)"
                                            </label>
                                        </div>
                                    </div>
                                    <div class="mb-4">
                                        <StepUpCode id="role-code" />
                                    </div>
                                    <button type="submit" class=BUTTON>
                                        "Save role"
                                    </button>
                                </ActionForm>
                            </section>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Suspense>
        <PolicyPanel />
    }
}

/// Who approves each requestable role, and how many approvals it needs.
#[component]
fn PolicyPanel() -> impl IntoView {
    let set = ServerAction::<crate::api::SetApprovalPolicy>::new();
    let data = Resource::new(move || set.version().get(), |_| crate::api::approval_policies());
    view! {
        <section class=CARD aria-labelledby="policy-h">
            <h2 id="policy-h" class="mb-2 font-semibold">
                "Approval of elevation requests"
            </h2>
            <p class="mb-4 text-sm text-slate-600">
                {POLICY_RULES}
            </p>
            <Done action=set message="Approval policy saved." />
            <FormError action=set />
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(list) => {
                            view! {
                                <ul id="policies" class="divide-y divide-slate-100 text-sm">
                                    {list
                                        .into_iter()
                                        .map(|p| {
                                            let key = p.role.clone();
                                            let li_key = key.clone();
                                            view! {
                                                <li class="py-3" data-policy=li_key>
                                                    <p class="font-medium">
                                                        {p.role_name.clone()} " "
                                                        <span class="font-mono text-xs text-slate-500">
                                                            {key.clone()}
                                                        </span>
                                                    </p>
                                                    <ActionForm
                                                        action=set
                                                        attr:class="mt-1 grid items-end gap-2 sm:grid-cols-5"
                                                    >
                                                        <input type="hidden" name="role" value=key.clone() />
                                                        <div>
                                                            <label for=format!("pol-n-{key}") class="block text-xs">
                                                                "Approvals needed"
                                                            </label>
                                                            <select
                                                                id=format!("pol-n-{key}")
                                                                name="approvals_needed"
                                                                class="w-full rounded border border-slate-300 px-2 py-1"
                                                            >
                                                                <option value="1" selected=p.approvals_needed == 1>
                                                                    "1"
                                                                </option>
                                                                <option value="2" selected=p.approvals_needed == 2>
                                                                    "2 (different people)"
                                                                </option>
                                                            </select>
                                                        </div>
                                                        <div class="sm:col-span-2">
                                                            <label for=format!("pol-a-{key}") class="block text-xs">
                                                                "Named approvers (emails; empty: holders of requests:approve)"
                                                            </label>
                                                            <input
                                                                id=format!("pol-a-{key}")
                                                                name="approvers"
                                                                value=p.approvers.join(", ")
                                                                class="w-full rounded border border-slate-300 px-2 py-1"
                                                            />
                                                        </div>
                                                        <div>
                                                            <label for=format!("pol-c-{key}") class="block text-xs">
                                                                "Authenticator code"
                                                            </label>
                                                            <input
                                                                id=format!("pol-c-{key}")
                                                                name="code"
                                                                inputmode="numeric"
                                                                autocomplete="one-time-code"
                                                                class="w-full rounded border border-slate-300 px-2 py-1"
                                                            />
                                                            <PasskeyStepUp
                                                                id=format!("pol-p-{key}")
                                                                purpose="change approval policy"
                                                            />
                                                        </div>
                                                        <button
                                                            type="submit"
                                                            class="rounded-md border border-slate-300 px-3 py-1 hover:bg-slate-100"
                                                        >
                                                            "Save"
                                                        </button>
                                                    </ActionForm>
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
