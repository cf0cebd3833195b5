//! Access reviews: campaigns that certify or remove standing access by a
//! deadline. A campaign takes a snapshot of the grants (or service-account
//! tokens) in its scope, one item each; reviewers decide each item (keep,
//! revoke, or convert to time-boxed); at the deadline, or when an
//! administrator closes it early, the undecided items are revoked or kept
//! and flagged as the campaign said. These are the rules; the access area
//! loads the facts, calls them and writes the outcome.

use super::{
    permissions::{Permission, PermissionSet},
    Millis, HOUR,
};
use serde::{Deserialize, Serialize};

pub const DAY: Millis = 24 * HOUR;

/// How far ahead a converted grant may end: a conversion shortens access,
/// it does not hand out another standing year.
pub const CONVERT_WITHIN: Millis = 365 * DAY;

/// The shortest and longest time a campaign may run.
pub const SHORTEST: Millis = DAY;
pub const LONGEST: Millis = 90 * DAY;

/// What a campaign reviews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Every standing grant.
    AllStanding,
    /// Standing grants of these roles.
    Roles(Vec<String>),
    /// Standing grants of roles that carry a critical permission.
    Critical,
    /// Standing grants held by the employees of one department.
    Department(String),
    /// Service accounts' API tokens.
    ServiceTokens,
}

impl Scope {
    /// Stored form: `all`, `roles:a,b`, `critical`, `department:x`, `tokens`.
    pub fn to_stored(&self) -> String {
        match self {
            Scope::AllStanding => "all".into(),
            Scope::Roles(r) => format!("roles:{}", r.join(",")),
            Scope::Critical => "critical".into(),
            Scope::Department(d) => format!("department:{d}"),
            Scope::ServiceTokens => "tokens".into(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            None => match s {
                "all" => Some(Scope::AllStanding),
                "critical" => Some(Scope::Critical),
                "tokens" => Some(Scope::ServiceTokens),
                _ => None,
            },
            Some(("roles", list)) => {
                let roles: Vec<String> = list.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect();
                (!roles.is_empty()).then_some(Scope::Roles(roles))
            }
            Some(("department", d)) if !d.trim().is_empty() => Some(Scope::Department(d.to_owned())),
            _ => None,
        }
    }

    /// Whether a grant belongs in a campaign of this scope.
    pub fn takes(&self, g: &GrantFacts) -> bool {
        match self {
            Scope::AllStanding => true,
            Scope::Roles(roles) => roles.iter().any(|r| r == &g.role),
            Scope::Critical => g.critical,
            Scope::Department(d) => g.department.eq_ignore_ascii_case(d),
            Scope::ServiceTokens => false,
        }
    }
}

/// What the snapshot needs to know of a grant to place it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFacts {
    pub role: String,
    /// The role carries a critical permission.
    pub critical: bool,
    pub department: String,
    pub starts_at: Millis,
    pub expires_at: Option<Millis>,
    pub revoked: bool,
    /// Waiting for approval, not in force.
    pub pending: bool,
}

/// Standing access: in force now and outliving the campaign's deadline (a
/// grant that ends before it ends by itself, with nothing to review).
pub fn is_standing(g: &GrantFacts, now: Millis, due_at: Millis) -> bool {
    !g.revoked && !g.pending && g.starts_at <= now && g.expires_at.is_none_or(|e| e > due_at)
}

/// What happens to an item nobody decided by the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Undecided {
    Revoke,
    KeepAndFlag,
}

impl Undecided {
    pub fn as_str(self) -> &'static str {
        match self {
            Undecided::Revoke => "revoke",
            Undecided::KeepAndFlag => "keep_and_flag",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Undecided::Revoke, Undecided::KeepAndFlag]
            .into_iter()
            .find(|u| u.as_str() == s)
    }
}

/// The campaign's deadline rule, for critical items and for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineRule {
    pub critical: Undecided,
    pub other: Undecided,
}

impl Default for DeadlineRule {
    /// Critical access nobody vouched for ends; the rest is kept and flagged.
    fn default() -> Self {
        Self {
            critical: Undecided::Revoke,
            other: Undecided::KeepAndFlag,
        }
    }
}

impl DeadlineRule {
    pub fn for_item(&self, critical: bool) -> Undecided {
        if critical {
            self.critical
        } else {
            self.other
        }
    }
}

/// A campaign as created: its name, deadline and recurrence checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCampaign {
    pub name: String,
    pub scope: Scope,
    pub starts_at: Millis,
    pub due_at: Millis,
    pub rule: DeadlineRule,
    /// A new campaign every this many months (1 to 12).
    pub every_months: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    #[error("Give the campaign a name of up to 120 characters.")]
    Name,
    #[error("The due date must be between one day and 90 days from the start.")]
    Due,
    #[error("A campaign recurs every 1 to 12 months.")]
    Recurrence,
    #[error("Choose at least one role to review.")]
    NoRoles,
}

/// Checks a campaign before it starts.
pub fn check_campaign(c: &NewCampaign) -> Result<(), CampaignError> {
    let name = c.name.trim();
    if name.is_empty() || name.chars().count() > 120 || name.chars().any(char::is_control) {
        return Err(CampaignError::Name);
    }
    let runs = c.due_at - c.starts_at;
    if !(SHORTEST..=LONGEST).contains(&runs) {
        return Err(CampaignError::Due);
    }
    if c.every_months.is_some_and(|m| !(1..=12).contains(&m)) {
        return Err(CampaignError::Recurrence);
    }
    if matches!(&c.scope, Scope::Roles(r) if r.is_empty()) {
        return Err(CampaignError::NoRoles);
    }
    Ok(())
}

/// The next campaign of a recurring one: it starts `months` calendar months
/// after this one started (same time of day, UTC; the 31st becomes the
/// month's last day) and runs as long.
pub fn next_run(starts_at: Millis, due_at: Millis, months: u32) -> (Millis, Millis) {
    let next = add_months(starts_at, months);
    (next, next + (due_at - starts_at))
}

/// How late a recurrence may start and keep its calendar deadline.
pub const LATE_START: Millis = HOUR;

/// The next campaign of a recurring one as it is started at `now`: `None`
/// before its day. Started more than `LATE_START` after its day (Gatehouse
/// was down), it runs its full length from `now`, so its reviewers are
/// never left a shorter window, or none, before its deadline rule acts.
pub fn recurrence_due(starts_at: Millis, due_at: Millis, months: u32, now: Millis) -> Option<(Millis, Millis)> {
    let (start, due) = next_run(starts_at, due_at, months);
    match now - start {
        late if late < 0 => None,
        late if late > LATE_START => Some((now, now + (due - start))),
        _ => Some((start, due)),
    }
}

/// `at` moved by whole calendar months (UTC), the day clamped to the month.
pub fn add_months(at: Millis, months: u32) -> Millis {
    let days = at.div_euclid(DAY);
    let time = at.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + (m as i64 - 1) + months as i64;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let nd = d.min(days_in_month(ny, nm));
    days_from_civil(ny, nm, nd) * DAY + time
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Who reviews an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reviewers {
    /// These employees: the role's owners, or one an administrator
    /// reassigned the item to.
    People(Vec<i64>),
    /// Any holder of `access:grant` other than the holder.
    Administrators,
    /// Nobody but the holder could: flagged, left to the deadline rule.
    NoIndependentReviewer,
}

/// The reviewers of a holder's item: the role's owners except the holder;
/// without one, the administrators except the holder; without one either,
/// nobody (flagged). Both lists hold only people who may decide (active,
/// not auditors).
pub fn reviewers(holder: i64, owners: &[i64], administrators: &[i64]) -> Reviewers {
    let owners: Vec<i64> = owners.iter().copied().filter(|o| *o != holder).collect();
    if !owners.is_empty() {
        Reviewers::People(owners)
    } else if administrators.iter().any(|a| *a != holder) {
        Reviewers::Administrators
    } else {
        Reviewers::NoIndependentReviewer
    }
}

impl Reviewers {
    /// Stored form: `administrators`, `none`, or `people:1,2`.
    pub fn to_stored(&self) -> String {
        match self {
            Reviewers::People(p) => {
                let ids: Vec<String> = p.iter().map(i64::to_string).collect();
                format!("people:{}", ids.join(","))
            }
            Reviewers::Administrators => "administrators".into(),
            Reviewers::NoIndependentReviewer => "none".into(),
        }
    }

    /// The stored form read back; anything unreadable is nobody's to decide
    /// (it is flagged and left to the deadline rule, never widened).
    pub fn parse(s: &str) -> Self {
        match s.split_once(':') {
            None if s == "administrators" => Reviewers::Administrators,
            Some(("people", list)) => {
                let ids: Option<Vec<i64>> = list.split(',').map(|i| i.parse().ok()).collect();
                match ids {
                    Some(ids) if !ids.is_empty() => Reviewers::People(ids),
                    _ => Reviewers::NoIndependentReviewer,
                }
            }
            _ => Reviewers::NoIndependentReviewer,
        }
    }

    /// Whether `who` may decide the item of `holder`.
    pub fn includes(&self, who: i64, is_administrator: bool, holder: i64) -> bool {
        who != holder
            && match self {
                Reviewers::People(p) => p.contains(&who),
                Reviewers::Administrators => is_administrator,
                Reviewers::NoIndependentReviewer => false,
            }
    }
}

/// Whether an employee with these permissions may take part in deciding:
/// never an auditor (auditors read campaigns; they do not decide), unless
/// they also hold `access:grant`.
pub fn may_decide(perms: PermissionSet) -> bool {
    perms.contains(Permission::AccessGrant)
        || !(perms.contains(Permission::AuditRead) || perms.contains(Permission::AuditExport))
}

/// A reviewer's decision on an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Keep,
    Revoke,
    /// Keep until then, and end by itself.
    Convert {
        expires_at: Millis,
    },
}

impl Decision {
    /// A decision as stored (`decision`, `decision_expires_at`).
    pub fn parse(s: &str, expires_at: Option<Millis>) -> Option<Self> {
        match (s, expires_at) {
            ("keep", _) => Some(Decision::Keep),
            ("revoke", _) => Some(Decision::Revoke),
            ("convert", Some(e)) => Some(Decision::Convert { expires_at: e }),
            _ => None,
        }
    }

    pub fn expires_at(&self) -> Option<Millis> {
        match self {
            Decision::Convert { expires_at } => Some(*expires_at),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Keep => "keep",
            Decision::Revoke => "revoke",
            Decision::Convert { .. } => "convert",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("This campaign is closed: its decisions are final.")]
    Closed,
    #[error("Nobody reviews their own access.")]
    OwnAccess,
    #[error("This item is not yours to review.")]
    NotReviewer,
    #[error("This item was revoked; access is granted again only through a new grant.")]
    RevokeFinal,
    #[error("Keeping a critical permission needs a comment saying why.")]
    CommentNeeded,
    #[error("A comment is at most 1,000 characters.")]
    CommentTooLong,
    #[error("A converted grant must end in the future, within a year.")]
    Expiry,
}

/// One decision as it is submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deciding<'a> {
    pub now: Millis,
    pub open: bool,
    pub reviewer: i64,
    pub reviewer_is_administrator: bool,
    pub holder: i64,
    pub reviewers: &'a Reviewers,
    pub critical: bool,
    pub current: Option<Decision>,
    pub decision: Decision,
    pub comment: &'a str,
}

/// Whether a decision may be recorded: by a reviewer of the item other
/// than its holder, while the campaign is open; a revoke is final; keeping
/// critical access needs a comment; a conversion ends within a year.
pub fn check_decision(d: &Deciding<'_>) -> Result<(), DecisionError> {
    if !d.open {
        return Err(DecisionError::Closed);
    }
    if d.reviewer == d.holder {
        return Err(DecisionError::OwnAccess);
    }
    if !d.reviewers.includes(d.reviewer, d.reviewer_is_administrator, d.holder) {
        return Err(DecisionError::NotReviewer);
    }
    if d.current == Some(Decision::Revoke) {
        return Err(DecisionError::RevokeFinal);
    }
    let comment = d.comment.trim();
    if comment.chars().count() > 1_000 {
        return Err(DecisionError::CommentTooLong);
    }
    match d.decision {
        Decision::Keep if d.critical && comment.chars().count() < 3 => Err(DecisionError::CommentNeeded),
        Decision::Convert { expires_at } if expires_at <= d.now || expires_at > d.now + CONVERT_WITHIN => {
            Err(DecisionError::Expiry)
        }
        _ => Ok(()),
    }
}

/// Why an item was kept though nobody vouched for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Flag {
    /// Undecided at the deadline, kept as the campaign said.
    Undecided,
    /// Nobody but the holder could review it.
    NoIndependentReviewer,
    /// Revoking it would have removed the last active administrator.
    LastAdministrator,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Undecided => "undecided",
            Flag::NoIndependentReviewer => "no independent reviewer",
            Flag::LastAdministrator => "last administrator",
        }
    }
}

/// What became of an item when its campaign closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Closing {
    /// Kept as decided.
    Kept,
    /// Revoked when the reviewer submitted (nothing left to do).
    AlreadyRevoked,
    /// Revoked now, by the deadline rule.
    Revoke,
    /// Ends at this instant from now on.
    Convert { expires_at: Millis },
    /// Kept, and flagged for the report.
    KeptFlagged(Vec<Flag>),
}

impl Closing {
    /// The outcome as stored and reported.
    pub fn as_str(&self) -> &'static str {
        match self {
            Closing::Kept => "kept",
            Closing::AlreadyRevoked | Closing::Revoke => "revoked",
            Closing::Convert { .. } => "converted",
            Closing::KeptFlagged(_) => "kept_flagged",
        }
    }

    /// The flags as stored: comma-separated, in order.
    pub fn flags(&self) -> String {
        match self {
            Closing::KeptFlagged(f) => f.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(","),
            _ => String::new(),
        }
    }
}

/// An item's outcome at close: decisions stand (a conversion takes effect
/// now); undecided items follow the campaign's rule, except that the rule
/// that an organisation keeps an active administrator wins over a revoke.
pub fn at_close(
    decision: Option<Decision>,
    critical: bool,
    reviewers: &Reviewers,
    rule: &DeadlineRule,
    last_administrator: bool,
) -> Closing {
    let mut flags = Vec::new();
    if *reviewers == Reviewers::NoIndependentReviewer {
        flags.push(Flag::NoIndependentReviewer);
    }
    match decision {
        Some(Decision::Keep) if flags.is_empty() => Closing::Kept,
        Some(Decision::Keep) => Closing::KeptFlagged(flags),
        Some(Decision::Revoke) => Closing::AlreadyRevoked,
        Some(Decision::Convert { expires_at }) => Closing::Convert { expires_at },
        None => match rule.for_item(critical) {
            Undecided::Revoke if last_administrator => {
                flags.push(Flag::LastAdministrator);
                Closing::KeptFlagged(flags)
            }
            Undecided::Revoke => Closing::Revoke,
            Undecided::KeepAndFlag => {
                flags.insert(0, Flag::Undecided);
                Closing::KeptFlagged(flags)
            }
        },
    }
}

/// A campaign's state at `now`: open until it is closed, by the deadline
/// or early by an administrator.
pub fn is_due_to_close(closed: bool, due_at: Millis, now: Millis) -> bool {
    !closed && now >= due_at
}

/// The reminders sent to reviewers with open items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Reminder {
    WeekBefore,
    DayBefore,
    OnTheDay,
}

impl Reminder {
    pub const ALL: [Reminder; 3] = [Reminder::WeekBefore, Reminder::DayBefore, Reminder::OnTheDay];

    pub fn as_str(self) -> &'static str {
        match self {
            Reminder::WeekBefore => "7_days",
            Reminder::DayBefore => "1_day",
            Reminder::OnTheDay => "due_today",
        }
    }

    /// When it falls due: 7 days and 1 day before the deadline, and at the
    /// start of the deadline's day in company time (`utc_offset_minutes`).
    pub fn at(self, due_at: Millis, utc_offset_minutes: i32) -> Millis {
        match self {
            Reminder::WeekBefore => due_at - 7 * DAY,
            Reminder::DayBefore => due_at - DAY,
            Reminder::OnTheDay => {
                let offset = Millis::from(utc_offset_minutes) * 60_000;
                (due_at + offset).div_euclid(DAY) * DAY - offset
            }
        }
    }
}

/// The reminder to send now, if any: the latest one due and not sent
/// (when the job was down, a late reminder does not bring the earlier ones
/// with it). One that fell due before the campaign started is never sent:
/// a campaign created six days before its deadline sends no week reminder.
/// Nothing after the deadline.
pub fn reminder_due(
    starts_at: Millis,
    due_at: Millis,
    now: Millis,
    utc_offset_minutes: i32,
    last_sent: Option<Reminder>,
) -> Option<Reminder> {
    if now >= due_at {
        return None;
    }
    let latest = Reminder::ALL
        .into_iter()
        .filter(|r| (starts_at..=now).contains(&r.at(due_at, utc_offset_minutes)))
        .max()?;
    last_sent.is_none_or(|s| latest > s).then_some(latest)
}

#[cfg(test)]
mod tests;
