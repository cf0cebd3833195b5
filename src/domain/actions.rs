//! Every kind of audit event, by the name stored in the trail. Appends
//! take an `Action`, so a misspelt action does not compile; readers (the
//! activity feed, alert rules, reports) parse the stored name back. A name
//! is part of the hashed event: never rename one that has been stored.

use serde::{Deserialize, Serialize};

macro_rules! actions {
    ($($variant:ident = $id:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Action { $($variant),* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            /// The name as stored in the trail.
            pub fn id(self) -> &'static str {
                match self { $(Action::$variant => $id),* }
            }
        }
    };
}

actions! {
    // Sign-in and sessions.
    SignIn = "auth.signin";
    PasswordAccepted = "auth.password";
    SignInCode = "auth.mfa";
    RecoveryCode = "auth.recovery_code";
    Lockout = "auth.lockout";
    Unlock = "auth.unlock";
    SignOut = "auth.signout";
    SignOutEverywhere = "auth.signout_everywhere";
    SessionExpired = "auth.session_expired";
    Sso = "auth.sso";
    // Second factor.
    StepUp = "mfa.step_up";
    Enrolled = "mfa.enrolled";
    EnrolRefused = "mfa.enrol";
    RecoveryCodesRegenerated = "mfa.recovery_codes_regenerated";
    PasskeyRegistered = "passkey.registered";
    PasskeyRegister = "passkey.register";
    PasskeyRemoved = "passkey.removed";
    PasskeyUsed = "passkey.used";
    PasskeyUse = "passkey.use";
    // Setup.
    SetupTokenIssued = "setup.token_issued";
    FirstAdmin = "setup.first_admin";
    // Grants (the past tense is the change, the verb a refusal of it).
    GrantCreated = "grant.created";
    GrantRequested = "grant.requested";
    GrantApproved = "grant.approved";
    GrantRejected = "grant.rejected";
    GrantRevoked = "grant.revoked";
    GrantExpired = "grant.expired";
    GrantShortened = "grant.shortened";
    GrantCreate = "grant.create";
    GrantApprove = "grant.approve";
    GrantRevoke = "grant.revoke";
    // Custom roles.
    RoleCreated = "role.created";
    RoleUpdated = "role.updated";
    RoleDeleted = "role.deleted";
    RoleSave = "role.save";
    RoleDelete = "role.delete";
    RoleChangeRequested = "role.change_requested";
    RoleChangeApproved = "role.change_approved";
    RoleChangeRejected = "role.change_rejected";
    // Employees.
    Onboarded = "employee.onboarded";
    Updated = "employee.updated";
    Activated = "employee.activated";
    Suspended = "employee.suspended";
    Suspend = "employee.suspend";
    Reactivated = "employee.reactivated";
    Offboarded = "employee.offboarded";
    Offboard = "employee.offboard";
    OffboardingScheduled = "employee.offboarding_scheduled";
    OffboardingCancelled = "employee.offboarding_cancelled";
    ScimDeleted = "employee.scim_deleted";
    OffboardingChecklist = "offboarding.checklist";
    InvitationCreated = "invitation.created";
    InvitationAccepted = "invitation.accepted";
    InvitationAccept = "invitation.accept";
    // Elevation.
    ElevationRequested = "elevation.requested";
    ExtensionRequested = "elevation.extension_requested";
    ElevationApprove = "elevation.approve";
    ElevationDeny = "elevation.deny";
    ElevationApproved = "elevation.approved";
    ElevationDenied = "elevation.denied";
    ApprovalRecorded = "elevation.approval_recorded";
    ElevationCancelled = "elevation.cancelled";
    ElevationRevoked = "elevation.revoked";
    ElevationRevoke = "elevation.revoke";
    ElevationExpired = "elevation.expired";
    ElevationLapsed = "elevation.lapsed";
    ElevationsEnded = "elevation.ended_all";
    PolicyChanged = "elevation.policy_changed";
    Breakglass = "elevation.breakglass";
    BreakglassActivated = "elevation.breakglass_activated";
    BreakglassReview = "elevation.breakglass_review";
    BreakglassReviewed = "elevation.breakglass_reviewed";
    // Access reviews.
    ReviewStarted = "review.campaign_started";
    ReviewClosed = "review.campaign_closed";
    ReviewDecided = "review.decided";
    ReviewDecide = "review.decide";
    ReviewReassigned = "review.reassigned";
    ReviewItemClosed = "review.item_closed";
    RoleOwnersSet = "review.role_owners_set";
    // Database targets and the accounts provisioned there.
    DbTargetRegistered = "database.target_registered";
    DbPrivilegeProposed = "database.privilege_proposed";
    DbPrivilegeMapped = "database.privilege_mapped";
    DbPrivilegeUnmapped = "database.privilege_unmapped";
    DbAccessProvisioned = "database.access_provisioned";
    DbRevocationReceipt = "database.revocation_receipt";
    DbChangePending = "database.change_pending";
    DbRevocationUnconfirmed = "database.revocation_unconfirmed";
    DbPasswordIssued = "database.password_issued";
    DbDriftFound = "database.drift_found";
    DbDriftCleared = "database.drift_cleared";
    DbDriftCorrected = "database.drift_corrected";
    DbDriftCorrection = "database.drift_correction_set";
    // Services.
    ServiceAccountCreated = "service_account.created";
    TokenCreated = "api_token.created";
    TokenRevoked = "api_token.revoked";
    ApiAuth = "api.auth";
    // Access to customer data, and refusals.
    AccessCheck = "access.check";
    DataAccess = "data.access";
    Denied = "authz.denied";
    // The trail itself.
    Exported = "audit.exported";
    AuditKeyRotated = "audit.key_rotated";
    WitnessAdded = "audit.witness_added";
    WitnessRetired = "audit.witness_retired";
    Cosign = "audit.cosign";
    MasterKeyRotated = "system.master_key_rotated";
    AlertRaised = "alert.raised";
    AlertAcknowledged = "alert.acknowledged";
    DemoSeeded = "demo.seeded";
}

impl Action {
    /// The action a stored name stands for; `None` for a name this version
    /// does not know (the trail keeps whatever was stored).
    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.id() == id)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_read_back() {
        let mut ids: Vec<&str> = Action::ALL.iter().map(|a| a.id()).collect();
        for a in Action::ALL {
            assert_eq!(Action::parse(a.id()), Some(*a));
            let (area, what) = a.id().split_once('.').expect("area.what");
            assert!(!area.is_empty() && !what.is_empty(), "{a}");
        }
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "two actions share a name");
        assert_eq!(Action::parse("auth.signin"), Some(Action::SignIn));
        assert_eq!(Action::parse("auth.signon"), None);
    }
}
