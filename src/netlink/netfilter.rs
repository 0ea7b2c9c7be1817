//! Reads the nftables ruleset generation from the kernel (nfnetlink): one
//! request, no `nft` started, tells whether any table changed. Writing and
//! listing stay with `nft` (see `net::shaper`).

use super::{NetlinkSocket, RequestError, attribute, read};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: u16 = 1;
/// struct nfgenmsg: family, version, resource id.
const NFGENMSG_LEN: usize = 4;

impl NetlinkSocket {
    /// The nftables ruleset generation: it changes whenever any table of any
    /// program changes, so an unchanged value means our table is as we left it.
    pub fn nftables_generation(&mut self) -> Result<u32, RequestError> {
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
        let replies = self.request(kind, 0, &[0u8; NFGENMSG_LEN])?;
        replies
            .first()
            .and_then(|payload| generation(payload))
            .ok_or(RequestError::Incomplete("generation"))
    }
}

/// NFTA_GEN_ID, a big-endian u32 as nfnetlink's attributes are.
fn generation(payload: &[u8]) -> Option<u32> {
    let value = attribute(payload.get(NFGENMSG_LEN..)?, NFTA_GEN_ID)?;
    read::<u32>(value, 0).map(u32::from_be)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::tests::{encode_attribute, skip_unless_answered};

    #[test]
    fn the_generation_is_a_big_endian_attribute_after_the_nfgenmsg() {
        let mut payload = vec![0u8; NFGENMSG_LEN];
        payload.extend(encode_attribute(NFTA_GEN_ID, &0x0102_0304u32.to_be_bytes()));
        assert_eq!(generation(&payload), Some(0x0102_0304));
        assert_eq!(generation(&payload[..NFGENMSG_LEN]), None);
    }

    #[test]
    fn the_generation_reads_on_a_real_kernel_and_does_not_go_back() {
        let mut socket = NetlinkSocket::netfilter();
        let Some(first) = skip_unless_answered(socket.nftables_generation()) else {
            return;
        };
        let again = socket.nftables_generation().unwrap();
        assert!(again >= first, "{again} after {first}");
    }
}
