//! The campaigns with their progress, the form that starts one, and the
//! role owners (`/reviews/campaigns`).

use crate::api::*;
use crate::components::{class::*, use_me, Done, Field, FormError, LoadError, Select, StepUpCode};
use crate::domain::permissions::Permission;
use crate::dto::{CampaignView, ReviewSetupView, RoleOwnersView};
use leptos::prelude::*;

/// A labelled input that may stay empty.
#[component]
fn Optional(
    label: &'static str,
    id: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
) -> impl IntoView {
    view! {
        <div class="mb-4">
            <label for=id class="mb-1 block text-sm font-medium text-slate-700">{label}</label>
            <input id=id name=name type=kind autocomplete="off" class=INPUT />
        </div>
    }
}

/// Decided out of total, as a bar and in words.
#[component]
pub(super) fn Progress(decided: i64, total: i64, label: String) -> impl IntoView {
    // A native bar: the page's Content-Security-Policy allows no inline style.
    let (value, max) = if total == 0 { (1, 1) } else { (decided, total) };
    view! {
        <div class="mb-1 text-sm">
            <span>{label.clone()} ": " {decided} " of " {total} " decided"</span>
            <progress
                class="mt-1 block h-2 w-full accent-indigo-600"
                value=value.to_string()
                max=max.to_string()
                aria-label=format!("{label}: decided")
            >
                {format!("{decided} of {total}")}
            </progress>
        </div>
    }
}

pub(super) fn campaign_summary(c: &CampaignView) -> impl IntoView + use<> {
    let state = match &c.closed_at {
        Some(at) => format!(
            "closed {at}{}",
            c.closed_by
                .clone()
                .map(|b| format!(" by {b}"))
                .unwrap_or_else(|| " at the deadline".into())
        ),
        None => format!("open, due {}", c.due_at),
    };
    let recurs = c
        .every_months
        .map(|m| format!(" · every {m} months"))
        .unwrap_or_default();
    view! {
        <p class="mb-2 text-sm text-slate-600">
            {c.scope.clone()} " · started " {c.starts_at.clone()} " · " {state} {recurs}
            " · undecided critical items: " {c.undecided_critical.clone()} " · other undecided items: "
            {c.undecided_other.clone()}
        </p>
        <Progress decided=c.decided total=c.items label="All items".to_owned() />
    }
}

#[component]
pub fn CampaignsPage() -> impl IntoView {
    let start = ServerAction::<StartReview>::new();
    let set = ServerAction::<SetRoleOwners>::new();
    let data = Resource::new(move || start.version().get(), |_| review_campaigns());
    // Auditors read campaigns; only administrators get the forms (anyone
    // else asking for them would be refused, and the refusal recorded).
    let me = use_me();
    let setup = Resource::new(
        move || set.version().get(),
        move |_| async move {
            match me.await {
                Ok(Some(m)) if m.can(Permission::AccessGrant) => review_setup().await.map(Some),
                _ => Ok(None),
            }
        },
    );
    view! {
        <h1 class="mb-4 text-2xl font-semibold">"Access review campaigns"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(list) if list.is_empty() => view! { <p class="mb-6">"No campaigns yet."</p> }.into_any(),
                    Ok(list) => list
                        .into_iter()
                        .map(|c| {
                            view! {
                                <section class=CARD data-campaign=c.id.to_string()>
                                    <h2 class="font-semibold">
                                        <a class=LINK href=format!("/reviews/{}", c.id)>{c.name.clone()}</a>
                                    </h2>
                                    {campaign_summary(&c)}
                                </section>
                            }
                        })
                        .collect_view()
                        .into_any(),
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match setup.await {
                    Ok(Some(s)) => view! {
                        <StartForm start roles=s.roles.clone() />
                        <RoleOwners set setup=s />
                    }
                        .into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <LoadError error=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// What happens to undecided items at the deadline, for a select.
fn rule_options() -> Vec<(String, String)> {
    vec![
        ("revoke".into(), "Revoke".into()),
        ("keep_and_flag".into(), "Keep and flag".into()),
    ]
}

/// What a new campaign reviews, when it is due, and what happens to what
/// nobody decided.
#[component]
fn StartForm(start: ServerAction<StartReview>, roles: Vec<RoleOwnersView>) -> impl IntoView {
    view! {
        <section class=CARD aria-labelledby="start-h">
            <h2 id="start-h" class="mb-2 font-semibold">"Start a campaign"</h2>
            <Done action=start message="Campaign started: its snapshot is taken." />
            <FormError action=start />
            <ActionForm action=start>
                <Field label="Name" name="name" autocomplete="off" hint="e.g. Q1 access review" />
                <label for="scope-kind" class="mb-1 block text-sm font-medium text-slate-700">"What to review"</label>
                <select id="scope-kind" name="scope_kind" class=INPUT>
                    <option value="all">"All standing grants"</option>
                    <option value="critical">"Grants carrying critical permissions"</option>
                    <option value="roles">"Grants of the roles chosen below"</option>
                    <option value="department">"One department"</option>
                    <option value="tokens">"Service-account tokens"</option>
                </select>
                <fieldset class="my-3">
                    <legend class="mb-1 text-sm font-medium text-slate-700">"Roles (for grants of chosen roles)"</legend>
                    <div class="grid gap-1 sm:grid-cols-2">
                        {roles
                            .into_iter()
                            .map(|r| view! {
                                <label class="flex items-center gap-2 text-sm">
                                    <input type="checkbox" name="roles[]" value=r.role.clone() />
                                    {r.name} <span class="font-mono text-xs text-slate-500">{r.role}</span>
                                </label>
                            })
                            .collect_view()}
                    </div>
                </fieldset>
                <Select label="Department (for one department)" name="department" options=crate::pages::admin::departments() />
                <Field label="Due in (days, 1 to 90)" name="due_in_days" kind="number" />
                <Select label="Undecided critical items at the deadline" name="critical_rule" options=rule_options() />
                <Select
                    label="Other undecided items at the deadline"
                    name="other_rule"
                    options=rule_options()
                    selected="keep_and_flag".to_owned()
                />
                <Optional label="Repeat every (months, optional)" id="every-months" name="every_months" kind="number" />
                <div class="mb-4">
                    <StepUpCode id="start-code" />
                </div>
                <button type="submit" class=BUTTON>"Start campaign"</button>
            </ActionForm>
        </section>
    }
}

/// Who reviews a role's grants: each role with its owners, and a form that
/// names them (the chosen role's owners are ticked).
#[component]
fn RoleOwners(set: ServerAction<SetRoleOwners>, setup: ReviewSetupView) -> impl IntoView {
    let (role, set_role) = signal(String::new());
    // Until one is chosen, the first role (the select's first option).
    let first = setup.roles.first().map(|r| r.role.clone()).unwrap_or_default();
    let roles = StoredValue::new((first, setup.roles.clone()));
    let current = move || {
        let chosen = role.get();
        if chosen.is_empty() {
            roles.with_value(|(first, _)| first.clone())
        } else {
            chosen
        }
    };
    let owned = move |id: i64| {
        let key = current();
        roles.with_value(|(_, rs)| {
            rs.iter()
                .find(|r| r.role == key)
                .is_some_and(|r| r.owners.iter().any(|o| o.id == id))
        })
    };
    view! {
        <section class=CARD aria-labelledby="owners-h">
            <h2 id="owners-h" class="mb-2 font-semibold">"Role owners"</h2>
            <p class="mb-2 text-sm text-slate-600">
                "Owners review the grants of their role in the campaigns started after this; "
                "a role without owners is reviewed by administrators. Nobody reviews their own access, "
                "and auditors are never owners."
            </p>
            <Done action=set message="Owners saved." />
            <FormError action=set />
            <table class="mb-4 w-full text-sm" aria-label="Role owners">
                <thead>
                    <tr>
                        <th class=TH>"Role"</th>
                        <th class=TH>"Reviewed by"</th>
                    </tr>
                </thead>
                <tbody>
                    {setup
                        .roles
                        .iter()
                        .map(|r| {
                            let who = if r.owners.is_empty() {
                                "administrators".to_owned()
                            } else {
                                r.owners.iter().map(|o| o.name.clone()).collect::<Vec<_>>().join(", ")
                            };
                            view! {
                                <tr data-role=r.role.clone()>
                                    <td class=TD>
                                        {r.name.clone()} " "
                                        <span class="font-mono text-xs">{r.role.clone()}</span>
                                    </td>
                                    <td class=TD>{who}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
            <ActionForm action=set>
                <label for="owners-role" class="mb-1 block text-sm font-medium text-slate-700">
                    "Role"
                </label>
                <select
                    id="owners-role"
                    name="role"
                    class=INPUT
                    prop:value=current
                    on:change=move |e| set_role.set(event_target_value(&e))
                >
                    {setup
                        .roles
                        .iter()
                        .map(|r| view! { <option value=r.role.clone()>{format!("{} ({})", r.name, r.role)}</option> })
                        .collect_view()}
                </select>
                <fieldset class="my-3">
                    <legend class="mb-1 text-sm font-medium text-slate-700">
                        "Owners (none: administrators)"
                    </legend>
                    <div class="grid gap-1 sm:grid-cols-2">
                        {setup
                            .people
                            .into_iter()
                            .map(|p| {
                                let id = p.id;
                                view! {
                                    <label class="flex items-center gap-2 text-sm">
                                        <input
                                            type="checkbox"
                                            name="owners[]"
                                            value=id.to_string()
                                            checked=owned(id)
                                            prop:checked=move || owned(id)
                                        />
                                        {p.name} <span class="text-slate-500">{p.email}</span>
                                    </label>
                                }
                            })
                            .collect_view()}
                    </div>
                </fieldset>
                <button type="submit" class=BUTTON>"Save owners"</button>
            </ActionForm>
        </section>
    }
}
