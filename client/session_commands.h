// `sessions create|list|get|fork|delete`: the SessionService RPCs.
#ifndef SUPRA_CLIENT_SESSION_COMMANDS_H_
#define SUPRA_CLIENT_SESSION_COMMANDS_H_

#include <vector>

#include "client/flags.h"
#include "client/invocation.h"

namespace supra::client {

const std::vector<FlagSpec>& SessionsCreateFlagSpecs();
const std::vector<FlagSpec>& SessionsListFlagSpecs();
const std::vector<FlagSpec>& SessionsGetFlagSpecs();
const std::vector<FlagSpec>& SessionsForkFlagSpecs();
const std::vector<FlagSpec>& SessionsDeleteFlagSpecs();

int RunSessionsCreate(Invocation& invocation, const ParsedFlags& flags);
int RunSessionsList(Invocation& invocation, const ParsedFlags& flags);
int RunSessionsGet(Invocation& invocation, const ParsedFlags& flags);
int RunSessionsFork(Invocation& invocation, const ParsedFlags& flags);
int RunSessionsDelete(Invocation& invocation, const ParsedFlags& flags);

}  // namespace supra::client

#endif  // SUPRA_CLIENT_SESSION_COMMANDS_H_
