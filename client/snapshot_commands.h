// `sessions export ID FILE` and `sessions import FILE`: a session's state as
// a snapshot file (SessionService.ExportSession / ImportSession), to move a
// conversation between servers running the same model.
#ifndef SUPRA_CLIENT_SNAPSHOT_COMMANDS_H_
#define SUPRA_CLIENT_SNAPSHOT_COMMANDS_H_

#include <vector>

#include "client/flags.h"
#include "client/invocation.h"

namespace supra::client {

const std::vector<FlagSpec>& SessionsExportFlagSpecs();
const std::vector<FlagSpec>& SessionsImportFlagSpecs();

int RunSessionsExport(Invocation& invocation, const ParsedFlags& flags);
int RunSessionsImport(Invocation& invocation, const ParsedFlags& flags);

}  // namespace supra::client

#endif  // SUPRA_CLIENT_SNAPSHOT_COMMANDS_H_
