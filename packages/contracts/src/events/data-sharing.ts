/** Events produced by the data-sharing service (none cross a boundary yet besides erasure replies). */
export const dataSharingEvents = {} as const;
