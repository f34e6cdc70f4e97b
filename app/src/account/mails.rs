//! The account context's mails, in the words a user reads. Each names no more than the mail's
//! reader may know: a mail to an address says nothing about any other account.

use fishapp_mail::Mail;

/// To a new address that is free: the link that makes it the account's.
pub(super) fn confirm_address(
    to: &str,
    name: &str,
    link: &str,
    valid_for: chrono::Duration,
) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Confirm your new Fishapp address".to_owned(),
        text: format!(
            "Hello {name},\n\n\
             someone (we hope you) asked to use this address to sign in to Fishapp.\n\
             Open this link to confirm it; until then your old address stays in use:\n\n\
             {link}\n\n\
             The link works once, for {hours} hours. If you did not ask for this, ignore this \
             mail: nothing changes.\n",
            hours = valid_for.num_hours().max(1)
        ),
    }
}

/// To a new address that already has an account: what happened, and no link.
pub(super) fn address_in_use(to: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Your address and Fishapp".to_owned(),
        text: "Hello,\n\n\
               someone asked to move a Fishapp account to this address. This address already \
               has a Fishapp account, so nothing was changed.\n\
               If it was you, sign in with this address instead. If it was not, you can ignore \
               this mail.\n"
            .to_owned(),
    }
}

/// To the old address once a change is confirmed.
pub(super) fn address_changed(to: &str, new_address: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Your Fishapp address was changed".to_owned(),
        text: format!(
            "Hello,\n\n\
             the Fishapp account that signed in with this address now signs in with \
             {new_address}.\n\
             If you did not make this change, change your password at once.\n"
        ),
    }
}
