//! The employee directory with its filters, and onboarding.

use super::departments;
use crate::api::*;
use crate::components::{capital, class::*, Badge, Field, FormError, InvitationSent, LoadError, Select, Submit};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

// ---------------------------------------------------------------- directory

#[component]
pub fn DirectoryPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    let rows = Resource::new(
        move || (get("q"), get("department"), get("role"), get("status"), get("mfa")),
        |(q, department, role, status, mfa)| list_employees(q, department, role, status, mfa),
    );
    let catalogue = Resource::new(|| (), |_| catalogue());
    view! {
        <div class="mb-4 flex items-center justify-between">
            <h1 class="text-2xl font-semibold">"Employees"</h1>
            <a href="/employees/new" class=BUTTON>
                "Onboard an employee"
            </a>
        </div>
        <form
            method="get"
            action="/employees"
            class="mb-6 grid gap-x-4 rounded-lg border border-slate-200 bg-white p-4 sm:grid-cols-3 lg:grid-cols-6"
            role="search"
            aria-label="Filter employees"
        >
            <div class="mb-4 sm:col-span-2">
                <label for="q" class="mb-1 block text-sm font-medium text-slate-700">
                    "Name or email"
                </label>
                <input id="q" name="q" type="search" class=INPUT prop:value=move || get("q") />
            </div>
            <Select
                label="Department"
                name="department"
                selected=get("department")
                options={
                    let mut o = vec![(String::new(), "Any".to_string())];
                    o.extend(departments());
                    o
                }
            />
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let mut o = vec![(String::new(), "Any".to_string())];
                    if let Ok(c) = catalogue.await {
                        o.extend(c.roles.into_iter().map(|r| (r.key, r.name)));
                    }
                    view! { <Select label="Role" name="role" selected=get("role") options=o /> }
                })}
            </Suspense>
            <Select
                label="Status"
                name="status"
                selected=get("status")
                options=vec![
                    (String::new(), "Any".into()),
                    ("invited".into(), "Invited".into()),
                    ("active".into(), "Active".into()),
                    ("suspended".into(), "Suspended".into()),
                    ("offboarded".into(), "Offboarded".into()),
                ]
            />
            <Select
                label="MFA"
                name="mfa"
                selected=get("mfa")
                options=vec![
                    (String::new(), "Any".into()),
                    ("enrolled".into(), "Set up".into()),
                    ("missing".into(), "Not set up".into()),
                ]
            />
            <div class="flex items-end gap-2 pb-4 sm:col-span-3 lg:col-span-6">
                <button type="submit" class=BUTTON>
                    "Filter"
                </button>
                <a href="/employees" class="px-3 py-2 text-sm text-slate-700 underline">
                    "Clear"
                </a>
            </div>
        </form>
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match rows.await {
                    Ok(rows) if rows.is_empty() => view! { <p id="no-employees">"No employees match."</p> }.into_any(),
                    Ok(rows) => {
                        view! {
                            <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white">
                                <table id="employees" class="min-w-full divide-y divide-slate-200 text-sm">
                                    <caption class="sr-only">"Employees"</caption>
                                    <thead class="bg-slate-50">
                                        <tr>
                                            <th scope="col" class=TH>
                                                "Name"
                                            </th>
                                            <th scope="col" class=TH>
                                                "Department"
                                            </th>
                                            <th scope="col" class=TH>
                                                "Roles"
                                            </th>
                                            <th scope="col" class=TH>
                                                "Status"
                                            </th>
                                            <th scope="col" class=TH>
                                                "MFA"
                                            </th>
                                        </tr>
                                    </thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {rows
                                            .into_iter()
                                            .map(|e| {
                                                view! {
                                                    <tr data-email=e.email.clone()>
                                                        <td class=TD>
                                                            <a class=LINK href=format!("/employees/{}", e.id)>
                                                                {e.name.clone()}
                                                            </a>
                                                            <span class="block text-xs text-slate-500">
                                                                {e.email.clone()}
                                                            </span>
                                                        </td>
                                                        <td class=TD>{capital(&e.department)}</td>
                                                        <td class=TD>{e.roles.join(", ")}</td>
                                                        <td class=TD>
                                                            <Badge text=e.status.as_str().to_owned() />
                                                        </td>
                                                        <td class=TD>
                                                            <Badge text=(if e.mfa { "enrolled" } else { "missing" })
                                                                .to_string() />
                                                        </td>
                                                    </tr>
                                                }
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

// ---------------------------------------------------------------- onboarding

#[component]
pub fn OnboardPage() -> impl IntoView {
    let action = ServerAction::<OnboardEmployee>::new();
    let catalogue = Resource::new(|| (), |_| catalogue());
    view! {
        <h1 class="mb-4 text-2xl font-semibold">"Onboard an employee"</h1>
        <section class=CARD aria-labelledby="onboard-h">
            <h2 id="onboard-h" class="sr-only">
                "New employee"
            </h2>
            <FormError action />
            {move || {
                action
                    .value()
                    .get()
                    .and_then(|r| r.ok())
                    .map(|inv| {
                        view! {
                            <div role="status" class="mb-4 rounded-md border border-green-200 bg-green-50 p-3 text-sm">
                                <p class="mb-2 font-semibold">"Employee created."</p>
                                <InvitationSent invited=inv.clone() />
                                <p class="mt-2">
                                    <a class=LINK href=format!("/employees/{}", inv.user_id)>
                                        "Open the employee's page"
                                    </a>
                                </p>
                            </div>
                        }
                    })
            }}
            <ActionForm action=action>
                <Field label="Full name" name="name" autocomplete="off" />
                <Field label="Work email" name="email" kind="email" autocomplete="off" />
                <Select label="Department" name="department" options=departments() />
                <fieldset class="mb-4">
                    <legend class="mb-1 text-sm font-medium text-slate-700">"Initial roles"</legend>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            match catalogue.await {
                                Ok(c) => {
                                    c.roles
                                        .into_iter()
                                        .filter(|r| r.max_duration.is_none())
                                        .map(|r| {
                                            let id = format!("role-{}", r.key);
                                            view! {
                                                <div class="flex items-start gap-2 py-1">
                                                    <input
                                                        type="checkbox"
                                                        id=id.clone()
                                                        name="roles[]"
                                                        value=r.key.clone()
                                                        class="mt-1"
                                                    />
                                                    <label for=id class="text-sm">
                                                        <span class="font-medium">{r.name.clone()}</span>
                                                        <span class="block text-xs text-slate-500">
                                                            {r.description.clone()}
                                                        </span>
                                                    </label>
                                                </div>
                                            }
                                        })
                                        .collect_view()
                                        .into_any()
                                }
                                Err(e) => view! { <LoadError error=e /> }.into_any(),
                            }
                        })}
                    </Suspense>
                    <p class="mt-1 text-xs text-slate-500">
                        "Time-boxed roles are granted from the employee's page once they are needed."
                    </p>
                </fieldset>
                <div class="mb-4">
                    <label for="reason" class="mb-1 block text-sm font-medium text-slate-700">
                        "Reason for the initial roles"
                    </label>
                    <input id="reason" name="reason" class=INPUT placeholder="onboarding" />
                </div>
                <Submit label="Create employee and invitation" pending=action.pending() />
            </ActionForm>
        </section>
    }
}
