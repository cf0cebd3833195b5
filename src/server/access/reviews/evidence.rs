//! The evidence bundle of a closed campaign (`domain::evidence`): the
//! frozen report, and each of the campaign's audit events with its
//! inclusion proof under one signed checkpoint (signed now if none covers
//! the close yet).

use super::campaign;
use crate::domain::{
    bundle::PublicKey,
    evidence::{Header, Line, FORMAT},
};
use crate::errors::AppError;
use crate::server::{
    audit::{self, checkpoints},
    state::AppState,
};

/// The bundle as JSON Lines. Refused while the campaign is open: its
/// report is not final.
pub async fn evidence(st: &AppState, campaign_id: i64) -> Result<String, AppError> {
    let c = campaign(st.db.pool(), campaign_id).await?.ok_or(AppError::NotFound)?;
    let Some(sha) = c.report_sha256.clone().filter(|_| c.closed_at.is_some()) else {
        return Err(AppError::Conflict(
            "The evidence bundle exists once the campaign has closed.".into(),
        ));
    };
    let sql = format!(
        "SELECT {} FROM audit_events WHERE target_type = 'review_campaign' AND target_id = ? ORDER BY seq",
        audit::COLUMNS
    );
    let rows = sqlx::query(&sql)
        .bind(campaign_id.to_string())
        .fetch_all(st.db.pool())
        .await?;
    let events = rows.iter().map(audit::event_from_row).collect::<Result<Vec<_>, _>>()?;
    let last = events.last().map_or(0, |e| e.seq);
    let covering = match checkpoints::latest(st.db.pool()).await? {
        Some(cp) if cp.tree_size >= last => cp,
        _ => {
            checkpoints::sign(st, true).await.map_err(crate::errors::internal)?;
            checkpoints::latest(st.db.pool())
                .await?
                .filter(|cp| cp.tree_size >= last)
                .ok_or_else(|| crate::errors::internal("no checkpoint covers the campaign after signing one"))?
        }
    };
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let proofs = checkpoints::proofs(&st.db, &covering, &seqs).await?;
    let csv = super::report_csv(st, campaign_id).await?.csv;
    let header = Header {
        format: FORMAT.into(),
        exported_at: st.clock.now(),
        campaign_id,
        report_sha256: sha,
        public_keys: audit::public_keys(&st.db)
            .await?
            .into_iter()
            .map(|(key_id, public_key, _)| PublicKey { key_id, public_key })
            .collect(),
        checkpoint: covering,
    };
    if proofs.len() != events.len() {
        return Err(crate::errors::internal(
            "an event of the campaign has no inclusion proof",
        ));
    }
    let mut out = line(&header)?;
    out.push_str(&line(&Line::Report { csv })?);
    for (event, proof) in events.into_iter().zip(proofs) {
        let path = proof.path.iter().map(hex::encode).collect();
        out.push_str(&line(&Line::Event {
            event: Box::new(event),
            path,
        })?);
    }
    Ok(out)
}

/// One JSON line.
fn line<T: serde::Serialize>(v: &T) -> Result<String, AppError> {
    let mut s = serde_json::to_string(v).map_err(crate::errors::internal)?;
    s.push('\n');
    Ok(s)
}
