//! Grants: the open grants behind the overview, and the tables that show
//! grants and where permissions come from (also on "My access").

use crate::api::*;
use crate::components::{class::*, Badge, FormError, LoadError};
use crate::dto::*;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

// ---------------------------------------------------------------- grants list

#[component]
pub fn GrantsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || query.with(|q| q.get("filter").unwrap_or_default());
    let revoke = ServerAction::<RevokeGrant>::new();
    let approve = ServerAction::<ApproveGrant>::new();
    let data = Resource::new(
        move || (filter(), revoke.version().get() + approve.version().get()),
        |(f, _)| grant_list(f),
    );
    let title = move || match filter().as_str() {
        "critical" => "Standing grants of critical permissions",
        "expiring" => "Grants expiring in the next 7 days",
        "pending" => "Grants awaiting a second administrator",
        _ => "Open grants",
    };
    view! {
        <h1 class="mb-2 text-2xl font-semibold">{title}</h1>
        <nav aria-label="Grant lists" class="mb-4 flex gap-3 text-sm">
            <a class=LINK href="/grants">
                "All open"
            </a>
            <a class=LINK href="/grants?filter=critical">
                "Critical, standing"
            </a>
            <a class=LINK href="/grants?filter=expiring">
                "Expiring soon"
            </a>
            <a class=LINK href="/grants?filter=pending">
                "Awaiting approval"
            </a>
        </nav>
        <FormError action=revoke />
        <FormError action=approve />
        <Suspense fallback=|| {
            view! { <p>"Loading…"</p> }
        }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(g) => {
                        view! {
                            <div class="rounded-lg border border-slate-200 bg-white p-2">
                                <GrantTable grants=g revoke=Some(revoke) approve=Some(approve) show_user=true />
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

#[component]
pub fn PermissionTable(perms: Vec<PermissionSource>) -> impl IntoView {
    if perms.is_empty() {
        return view! {
            <p id="no-permissions" class="text-sm text-slate-600">
                "No permissions."
            </p>
        }
        .into_any();
    }
    view! {
        <table id="permissions" class="min-w-full divide-y divide-slate-200 text-sm">
            <caption class="sr-only">"Effective permissions and where they come from"</caption>
            <thead class="bg-slate-50">
                <tr>
                    <th scope="col" class=TH>
                        "Permission"
                    </th>
                    <th scope="col" class=TH>
                        "Level"
                    </th>
                    <th scope="col" class=TH>
                        "From"
                    </th>
                </tr>
            </thead>
            <tbody class="divide-y divide-slate-100">
                {perms
                    .into_iter()
                    .map(|p| {
                        view! {
                            <tr data-permission=p.id.clone()>
                                <td class=TD>
                                    <span class="font-mono">{p.id.clone()}</span>
                                    <span class="block text-xs text-slate-500">{p.description.clone()}</span>
                                </td>
                                <td class=TD>
                                    <Badge text=p.sensitivity.clone() />
                                </td>
                                <td class=TD>{p.sources.join("; ")}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
pub fn GrantTable(
    grants: Vec<GrantInfo>,
    revoke: Option<ServerAction<RevokeGrant>>,
    approve: Option<ServerAction<ApproveGrant>>,
    show_user: bool,
) -> impl IntoView {
    if grants.is_empty() {
        return view! {
            <p id="no-grants" class="text-sm text-slate-600">
                "No grants."
            </p>
        }
        .into_any();
    }
    view! {
        <div class="overflow-x-auto">
            <table id="grants" class="min-w-full divide-y divide-slate-200 text-sm">
                <caption class="sr-only">"Grants, newest first"</caption>
                <thead class="bg-slate-50">
                    <tr>
                        {show_user
                            .then(|| {
                                view! {
                                    <th scope="col" class=TH>
                                        "Employee"
                                    </th>
                                }
                            })} <th scope="col" class=TH>
                            "Role"
                        </th><th scope="col" class=TH>
                            "State"
                        </th><th scope="col" class=TH>
                            "Granted"
                        </th> <th scope="col" class=TH>
                            "Expires"
                        </th><th scope="col" class=TH>
                            "Ended"
                        </th>
                        {revoke
                            .is_some()
                            .then(|| {
                                view! {
                                    <th scope="col" class=TH>
                                        <span class="sr-only">"Actions"</span>
                                    </th>
                                }
                            })}
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {grants
                        .into_iter()
                        .map(|g| {
                            let open = g.state.is_open();
                            let gid = g.id;
                            let pending = g.state == GrantState::Pending;
                            view! {
                                <tr data-grant=gid.to_string() data-role=g.role.clone() data-state=g.state.as_str()>
                                    {show_user
                                        .then(|| {
                                            view! {
                                                <td class=TD>
                                                    <a class=LINK href=format!("/employees/{}", g.user_id)>
                                                        {g.user_name.clone()}
                                                    </a>
                                                </td>
                                            }
                                        })}
                                    <td class=TD>
                                        {g.role_name.clone()}
                                        {g
                                            .critical
                                            .then(|| {
                                                view! {
                                                    " "
                                                    <Badge text="critical".to_string() />
                                                }
                                            })}
                                        {(!g.customers.is_empty())
                                            .then(|| {
                                                view! {
                                                    <span class="grant-scope block text-xs text-slate-500">
                                                        "Only customers " {g.customers.join(", ")}
                                                    </span>
                                                }
                                            })}
                                    </td>
                                    <td class=TD>
                                        <Badge text=g.state.as_str().to_owned() />
                                    </td>
                                    <td class=TD>
                                        {g.starts_at.clone()}{g.granted_by.clone().map(|b| format!(" by {b}"))}
                                        <span class="block text-xs text-slate-500">{g.reason.clone()}</span>
                                        {g
                                            .approved_by
                                            .clone()
                                            .map(|a| {
                                                view! {
                                                    <span class="block text-xs text-slate-500">"Approved by " {a}</span>
                                                }
                                            })}
                                    </td>
                                    <td class=TD>{g.expires_at.clone().unwrap_or_else(|| "—".into())}</td>
                                    <td class=TD>
                                        {g
                                            .revoked_at
                                            .clone()
                                            .map(|t| {
                                                view! {
                                                    {t}
                                                    {g.revoked_by.clone().map(|b| format!(" by {b}"))}
                                                    <span class="block text-xs text-slate-500">
                                                        {g.revoke_reason.clone()}
                                                    </span>
                                                }
                                            })}
                                    </td>
                                    {revoke
                                        .map(|revoke| {
                                            view! {
                                                <td class=TD>
                                                    {(open && pending)
                                                        .then(|| {
                                                            approve
                                                                .map(|approve| {
                                                                    view! {
                                                                        <ActionForm action=approve attr:class="mb-1">
                                                                            <input
                                                                                type="hidden"
                                                                                name="grant_id"
                                                                                value=gid.to_string()
                                                                            />
                                                                            <button
                                                                                type="submit"
                                                                                class=format!("approve {SMALL_BUTTON}")
                                                                            >
                                                                                "Approve"
                                                                            </button>
                                                                        </ActionForm>
                                                                    }
                                                                })
                                                        })}
                                                    {open
                                                        .then(|| {
                                                            view! {
                                                                <ActionForm action=revoke attr:class="flex gap-1">
                                                                    <input
                                                                        type="hidden"
                                                                        name="grant_id"
                                                                        value=gid.to_string()
                                                                    />
                                                                    <label class="sr-only" for=format!("revoke-reason-{gid}")>
                                                                        "Reason to revoke"
                                                                    </label>
                                                                    <input
                                                                        id=format!("revoke-reason-{gid}")
                                                                        name="reason"
                                                                        required
                                                                        placeholder="Reason"
                                                                        class="w-28 rounded border border-slate-300 px-2 py-1"
                                                                    />
                                                                    <button
                                                                        type="submit"
                                                                        class=format!("revoke {SMALL_DANGER}")
                                                                    >
                                                                        {if pending { "Reject" } else { "Revoke" }}
                                                                    </button>
                                                                </ActionForm>
                                                            }
                                                        })}
                                                </td>
                                            }
                                        })}
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
